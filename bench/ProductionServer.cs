using ManaSync.Testing;
using ManaSync.Web.Auth;

namespace ManaSync.Bench;

/// <summary>
/// A fresh database and the built server on it in the Production environment (JSON logs,
/// pre-generated code, keys from a JWKS endpoint, auth and credits services answering), as it is deployed.
/// </summary>
public sealed class ProductionServer : IAsyncDisposable
{
    private readonly JwksServer _jwks;
    private readonly FakeManaServices _services;
    private readonly Ed25519SecurityKey _key;

    private ProductionServer(string database, JwksServer jwks, FakeManaServices services, Ed25519SecurityKey key, ServerProcess server)
    {
        Database = database;
        _jwks = jwks;
        _services = services;
        _key = key;
        Server = server;
    }

    public string Database { get; }
    public ServerProcess Server { get; }

    /// <summary>The auth and credits services the server asks (memberships can be set per user).</summary>
    public FakeManaServices Services => _services;

    /// <param name="settings">More environment variables (SHARDS, …).</param>
    public static async Task<ProductionServer> StartAsync(string? database = null, IReadOnlyDictionary<string, string>? settings = null)
    {
        database ??= await TestCluster.CreateDatabaseAsync();
        var jwks = await JwksServer.StartAsync();
        var key = jwks.AddKey("bench");
        // As deployed: memberships and billing status are answered (and cached), not failing.
        var services = await FakeManaServices.StartAsync();
        var environment = new Dictionary<string, string>(settings ?? new Dictionary<string, string>())
        {
            ["ASPNETCORE_ENVIRONMENT"] = "Production",
            ["JWKS_URL"] = jwks.Url,
            ["MANA_AUTH_URL"] = services.Url,
            ["MANA_CREDITS_URL"] = services.Url,
        };
        var server = await ServerProcess.StartAsync(database, environment);
        return new ProductionServer(database, jwks, services, key, server);
    }

    public SyncClient ClientFor(string userId, string? clientId = null) =>
        Server.ClientWithToken(Ed25519Tokens.Issue(_key, userId, TimeSpan.FromHours(4), DateTimeOffset.UtcNow), clientId);

    /// <summary>A client with an auditor's token (its scope holds "audit").</summary>
    public SyncClient AuditorFor(string userId) =>
        Server.ClientWithToken(Ed25519Tokens.Issue(_key, userId, TimeSpan.FromHours(4), DateTimeOffset.UtcNow, CurrentUser.AuditScope), null);

    public async ValueTask DisposeAsync()
    {
        await Server.DisposeAsync();
        await _jwks.DisposeAsync();
        await _services.DisposeAsync();
    }
}
