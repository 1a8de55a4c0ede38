using ManaSync.Web.Infrastructure.Sharding;

namespace ManaSync.Web.Features.Sync;

/// <summary>Creates the feed clock's marks and starts the native epoch in every shard before the server serves (<see cref="FeedClock"/>).</summary>
public sealed class FeedClockSetup(ShardDatabases shards) : IHostedService
{
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        foreach (var (_, database) in shards.All) await FeedClock.StartAsync(database, cancellationToken);
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
