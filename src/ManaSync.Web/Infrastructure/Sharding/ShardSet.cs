using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using ManaSync.Web.Configuration;

namespace ManaSync.Web.Infrastructure.Sharding;

/// <summary>A PostgreSQL database that holds some scopes' events and views: a Marten tenant database (MartenSetup).</summary>
public sealed record Shard(string Name, string ConnectionString);

/// <summary>
/// The shards a deployment runs on, main (DATABASE_URL, which holds the shard map) first, and where a scope
/// that has never been written goes. With SHARDS unset there is main alone and nothing is sharded.
/// </summary>
public sealed class ShardSet
{
    private readonly IReadOnlyDictionary<string, double> _weights;

    public ShardSet(IReadOnlyList<Shard> shards, IReadOnlyDictionary<string, double> weights)
    {
        if (shards.Count == 0 || shards[0].Name != ShardList.Main) throw new ArgumentException("main comes first", nameof(shards));
        if (weights.Keys.FirstOrDefault(name => shards.All(shard => shard.Name != name)) is { } unknown)
            throw new FormatException($"'{unknown}' is not a shard (main or a SHARDS entry)");
        if (shards.All(shard => WeightOf(weights, shard.Name) == 0))
            throw new FormatException("every shard weighs 0: new scopes would have nowhere to go");
        All = shards;
        _weights = weights;
    }

    public static ShardSet Single(string connectionString) => new([new Shard(ShardList.Main, connectionString)], new Dictionary<string, double>());

    public IReadOnlyList<Shard> All { get; }

    public Shard Main => All[0];

    public bool IsSharded => All.Count > 1;

    public bool Contains(string name) => All.Any(shard => shard.Name == name);

    /// <summary>
    /// Where a scope goes when it is first written: weighted rendezvous hashing. Each shard draws a score from
    /// the scope's and its own name, scaled by its weight, and the highest wins; so adding a shard or changing a
    /// weight changes the choice only for the share of scopes it should, and every node decides alike. The
    /// choice is recorded in the shard map (<see cref="ShardMap"/>), which alone says where a scope lives.
    /// </summary>
    public string PlaceNew(string scope) =>
        All.Where(shard => WeightOf(_weights, shard.Name) > 0)
            .MaxBy(shard => -WeightOf(_weights, shard.Name) / Math.Log(Draw(scope, shard.Name)))!.Name;

    private static double WeightOf(IReadOnlyDictionary<string, double> weights, string name) => weights.GetValueOrDefault(name, 1);

    /// <summary>A uniform draw in (0, 1) from the scope and the shard's name.</summary>
    private static double Draw(string scope, string shard)
    {
        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(Encoding.UTF8.GetBytes(scope + "\n" + shard), hash);
        return ((BinaryPrimitives.ReadUInt64LittleEndian(hash) >> 11) + 0.5) / (1UL << 53);
    }
}
