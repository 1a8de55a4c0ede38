namespace ManaSync.Web.Infrastructure.Sharding;

/// <summary>Creates the shard map in main at start-up when there are shards; after Marten, whose tables it reads.</summary>
public sealed class ShardMapSetup(ShardDatabases databases) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken) =>
        databases.Shards.IsSharded ? ShardMap.CreateAsync(databases.Main, cancellationToken) : Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
