using ManaSync.Testing;
using ManaSync.Tests.Support;
using Xunit;

namespace ManaSync.Tests.Sharding;

/// <summary>
/// A host on two shards in two clusters: main (cluster 0) and s2 (cluster 1), with fake auth and credits services
/// for memberships. Tests say where their scopes live (<see cref="PlaceAsync"/>) before they write.
/// </summary>
public sealed class ShardedFixture : AppFixture
{
    public FakeManaServices Services { get; private set; } = null!;
    public string Shard2 { get; private set; } = null!;

    protected override async Task BeforeStartAsync()
    {
        Services = await FakeManaServices.StartAsync();
        Shard2 = await TestCluster.CreateDatabaseAsync(1);
    }

    protected override IReadOnlyDictionary<string, string> Settings => new Dictionary<string, string>(ShardSettings)
    {
        ["MANA_AUTH_URL"] = Services.Url,
        ["MANA_CREDITS_URL"] = Services.Url,
    };

    /// <summary>What a command run against this host's databases needs to see its shards.</summary>
    public IReadOnlyDictionary<string, string> ShardSettings => new Dictionary<string, string> { ["SHARDS"] = $"s2={Shard2}" };

    /// <summary>Places scopes ("u:alice", "s:team") before anyone asks where they are.</summary>
    public Task PlaceAsync(params (string Scope, string Shard)[] placements) => ShardPlacement.PlaceAsync(ConnectionString, placements);

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        await Services.DisposeAsync();
    }
}

/// <summary>Sharded tests hold write transactions open; the clusters' horizons are shared, so they run alone.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ShardedCollection : ICollectionFixture<ShardedFixture>
{
    public const string Name = "sharded";
}
