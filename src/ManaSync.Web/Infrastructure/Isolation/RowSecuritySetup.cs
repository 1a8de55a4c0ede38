using ManaSync.Web.Infrastructure.Sharding;

namespace ManaSync.Web.Infrastructure.Isolation;

/// <summary>Applies <see cref="RowSecurity"/> to every shard at start-up; registered after Marten, whose hosted service creates the tables first.</summary>
public sealed class RowSecuritySetup(ShardDatabases shards) : IHostedService
{
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        foreach (var (_, database) in shards.All) await RowSecurity.ApplyAsync(database, cancellationToken);
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
