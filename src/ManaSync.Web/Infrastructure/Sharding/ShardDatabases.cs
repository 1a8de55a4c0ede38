using Npgsql;

namespace ManaSync.Web.Infrastructure.Sharding;

/// <summary>
/// A pool per shard for the server's own work, as the role DATABASE_URL and SHARDS name: schema and row security
/// set-up, the feed clock, listening for commits, the shard map and the shards commands. Requests never use them.
/// </summary>
public sealed class ShardDatabases : IAsyncDisposable
{
    private readonly Dictionary<string, NpgsqlDataSource> _pools;

    public ShardDatabases(ShardSet shards)
    {
        Shards = shards;
        _pools = shards.All.ToDictionary(shard => shard.Name, shard => DataSources.Create(shard.ConnectionString));
    }

    public ShardSet Shards { get; }

    public NpgsqlDataSource Main => _pools[Shards.Main.Name];

    public NpgsqlDataSource this[string shard] => _pools[shard];

    public IEnumerable<(Shard Shard, NpgsqlDataSource Database)> All => Shards.All.Select(shard => (shard, _pools[shard.Name]));

    public async ValueTask DisposeAsync()
    {
        foreach (var pool in _pools.Values) await pool.DisposeAsync();
    }
}
