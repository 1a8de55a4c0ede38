using System.Net;
using ManaSync.Testing;
using ManaSync.Web.Auth;
using Xunit;
using static ManaSync.Testing.Changes;

namespace ManaSync.Tests.Sharding;

/// <summary>Two nodes on main and s2: a push into s2 on one node wakes a stream on the other through s2's own NOTIFY.</summary>
public sealed class ShardedLiveTests : IAsyncLifetime
{
    private JwksServer _jwks = null!;
    private Ed25519SecurityKey _key = null!;
    private ServerProcess _node1 = null!, _node2 = null!;
    private string _main = null!;

    public async Task InitializeAsync()
    {
        _jwks = await JwksServer.StartAsync();
        _key = _jwks.AddKey("shard-key");
        _main = await TestCluster.CreateDatabaseAsync(0);
        var settings = new Dictionary<string, string> { ["JWKS_URL"] = _jwks.Url, ["SHARDS"] = $"s2={await TestCluster.CreateDatabaseAsync(1)}" };
        _node1 = await ServerProcess.StartAsync(_main, settings);
        _node2 = await ServerProcess.StartAsync(_main, settings);
    }

    public async Task DisposeAsync()
    {
        await _node1.DisposeAsync();
        await _node2.DisposeAsync();
        await _jwks.DisposeAsync();
    }

    [Fact]
    public async Task A_push_into_another_shard_on_one_node_reaches_a_stream_on_the_other()
    {
        await ShardPlacement.PlaceAsync(_main, ("u:bob", "s2"));
        var token = Ed25519Tokens.Issue(_key, "bob", TimeSpan.FromHours(1), DateTimeOffset.UtcNow);
        await using var stream = await SseStream.OpenAsync(_node2.Client, "/sync/todo/stream?collections=tasks", token);

        (await _node1.ClientWithToken(token, "writer").PushAsync("todo", Batch(Insert("tasks", "in-s2", new { }))))
            .AssertStatus(HttpStatusCode.OK);

        // Sooner than node 2's heartbeat (30 s) and safety-net poll (60 s): only s2's notification can have woken it.
        var delivered = await stream.NextAsync(withinSeconds: 10);
        Assert.Equal("in-s2", delivered.Json["changes"]![0]!["id"]!.GetValue<string>());
    }
}
