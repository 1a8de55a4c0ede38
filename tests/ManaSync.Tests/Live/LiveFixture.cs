using ManaSync.Testing;
using ManaSync.Web.Auth;
using Xunit;

namespace ManaSync.Tests.Live;

/// <summary>
/// Two server nodes (separate processes on real ports) sharing one database, with keys from a JWKS
/// endpoint so both accept the same tokens. Node 1 sends heartbeats every second (to test them);
/// node 2 keeps the default 30 s, so nothing but a notification wakes its streams within a test.
/// </summary>
public sealed class LiveFixture : IAsyncLifetime
{
    public JwksServer Jwks { get; private set; } = null!;
    public ServerProcess Node1 { get; private set; } = null!;
    public ServerProcess Node2 { get; private set; } = null!;
    private Ed25519SecurityKey _key = null!;

    public async Task InitializeAsync()
    {
        Jwks = await JwksServer.StartAsync();
        _key = Jwks.AddKey("live-key");
        var database = await TestCluster.CreateDatabaseAsync();
        Node1 = await ServerProcess.StartAsync(database, new Dictionary<string, string> { ["JWKS_URL"] = Jwks.Url, ["SSE_HEARTBEAT"] = "1" });
        Node2 = await ServerProcess.StartAsync(database, new Dictionary<string, string> { ["JWKS_URL"] = Jwks.Url });
    }

    public string Token(string userId, TimeSpan? lifetime = null) =>
        Ed25519Tokens.Issue(_key, userId, lifetime ?? TimeSpan.FromHours(1), DateTimeOffset.UtcNow);

    public async Task DisposeAsync()
    {
        await Node1.DisposeAsync();
        await Node2.DisposeAsync();
        await Jwks.DisposeAsync();
    }
}

[CollectionDefinition(Name)]
public sealed class LiveCollection : ICollectionFixture<LiveFixture>
{
    public const string Name = "live";
}
