using ManaSync.Web.Configuration;
using ManaSync.Web.Infrastructure.Sharding;
using Xunit;

namespace ManaSync.Core.Tests.Sharding;

/// <summary>SHARDS and SHARD_WEIGHTS as PROTOCOL §12 writes them, and where new scopes go.</summary>
public sealed class ShardSettingsTests
{
    [Fact]
    public void Shards_are_whitespace_separated_entries_of_urls_or_keywords_that_may_hold_spaces()
    {
        var shards = ShardList.Parse("""
            eu-2=postgres://u:p@h1:5432,h2:5433/mana?target_session_attributes=read-write
              us_1=Host=a,b;Port=5432,5433;Database=mana;Username=u;Target Session Attributes=read-write
            s3=postgresql://db3/mana
            """);

        Assert.Equal(["eu-2", "us_1", "s3"], shards.Select(shard => shard.Name));
        Assert.Equal("postgres://u:p@h1:5432,h2:5433/mana?target_session_attributes=read-write", shards[0].Connection);
        Assert.Equal("Host=a,b;Port=5432,5433;Database=mana;Username=u;Target Session Attributes=read-write", shards[1].Connection);
        Assert.Equal("postgresql://db3/mana", shards[2].Connection);
    }

    [Theory]
    [InlineData("main=postgres://h/db", "'main' is the shard DATABASE_URL names")]
    [InlineData("s2=postgres://h/db s2=postgres://k/db", "named twice")]
    [InlineData("S2=postgres://h/db", "lowercase")]
    [InlineData("postgres://h/db", "does not start one")]
    public void A_bad_shard_list_is_refused_with_its_reason(string text, string reason) =>
        Assert.Contains(reason, Assert.Throws<FormatException>(() => ShardList.Parse(text)).Message);

    [Fact]
    public void A_refused_entry_does_not_repeat_its_password()
    {
        var message = Assert.Throws<FormatException>(() => ShardList.Parse("postgres://user:secret-password@h/db")).Message;
        Assert.DoesNotContain("secret-password", message);
    }

    [Fact]
    public void Weights_name_shards_and_refuse_negatives_and_repeats()
    {
        Assert.Equal(new Dictionary<string, double> { ["main"] = 0, ["s2"] = 2.5 }, ShardList.ParseWeights("main=0, s2=2.5"));
        Assert.Throws<FormatException>(() => ShardList.ParseWeights("s2=-1"));
        Assert.Throws<FormatException>(() => ShardList.ParseWeights("s2=1 s2=2"));
        Assert.Throws<FormatException>(() => ShardList.ParseWeights("s2"));
    }

    [Fact]
    public void A_weight_for_an_unknown_shard_or_no_weight_anywhere_is_refused()
    {
        Assert.Contains("'s9' is not a shard", Assert.Throws<FormatException>(() => Set(("s9", 1))).Message);
        Assert.Contains("every shard weighs 0", Assert.Throws<FormatException>(() => Set(("main", 0), ("s2", 0), ("s3", 0))).Message);
    }

    [Fact]
    public void New_scopes_spread_by_weight_and_every_node_places_them_alike()
    {
        var scopes = Enumerable.Range(0, 20_000).Select(i => "u:user-" + i).ToList();
        var even = Set();
        var counts = scopes.GroupBy(even.PlaceNew).ToDictionary(group => group.Key, group => group.Count());
        Assert.All(counts.Values, count => Assert.InRange(count, 20_000 / 3 * 0.9, 20_000 / 3 * 1.1));
        Assert.Equal(scopes.Select(even.PlaceNew), scopes.Select(Set().PlaceNew));

        var weighted = Set(("main", 1), ("s2", 3), ("s3", 0));
        var weightedCounts = scopes.GroupBy(weighted.PlaceNew).ToDictionary(group => group.Key, group => group.Count());
        Assert.False(weightedCounts.ContainsKey("s3"));
        Assert.InRange(weightedCounts["s2"] / (double)weightedCounts["main"], 2.7, 3.3);
    }

    [Fact]
    public void A_shard_added_takes_only_its_share_of_new_scopes_from_the_others()
    {
        var scopes = Enumerable.Range(0, 20_000).Select(i => "s:space-" + i).ToList();
        var two = new ShardSet([new Shard("main", "Host=a"), new Shard("s2", "Host=b")], new Dictionary<string, double>());
        var three = Set();
        var changed = scopes.Where(scope => two.PlaceNew(scope) != three.PlaceNew(scope)).ToList();
        Assert.All(changed, scope => Assert.Equal("s3", three.PlaceNew(scope)));
        Assert.InRange(changed.Count, 20_000 / 3 * 0.9, 20_000 / 3 * 1.1);
    }

    private static ShardSet Set(params (string Name, double Weight)[] weights) =>
        new([new Shard("main", "Host=a"), new Shard("s2", "Host=b"), new Shard("s3", "Host=c")],
            weights.ToDictionary(weight => weight.Name, weight => weight.Weight));
}
