using ManaSync.Web.Features.Sync;
using ManaSync.Web.Features.WritePath;

namespace ManaSync.Web.Infrastructure.Sharding;

/// <summary>
/// With shards, before the server serves: in every shard the stamps (<see cref="FeedStamps"/>), the record of pending
/// parts (<see cref="PendingWrites"/>) and the fences of scopes that left (<see cref="ScopeFences"/>); in main the shard
/// map (<see cref="ShardMap"/>). After Marten and row security, whose tables and role these use.
/// </summary>
public sealed class ShardSetup(ShardDatabases databases) : IHostedService
{
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        if (!databases.Shards.IsSharded) return;
        foreach (var (_, database) in databases.All)
        {
            await FeedStamps.CreateAsync(database, cancellationToken);
            await PendingWrites.CreateAsync(database, cancellationToken);
            await ScopeFences.CreateAsync(database, cancellationToken);
        }
        await ShardMap.CreateAsync(databases.Main, cancellationToken);
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
