using Microsoft.Extensions.Logging;
using System.Net;
using ManaSync.Web.Auth;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;

namespace ManaSync.Testing;

/// <summary>A stand-in auth service serving a JWKS on a real loopback port, counting how often it is fetched.</summary>
public sealed class JwksServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly List<Ed25519SecurityKey> _keys = [];
    private int _fetches;

    private JwksServer(WebApplication app) => _app = app;

    public string Url => _app.Urls.Single() + "/jwks";

    /// <summary>While set, the endpoint answers 503, as an unreachable auth service would fail.</summary>
    public volatile bool Down;
    public int Fetches => Volatile.Read(ref _fetches);

    public static async Task<JwksServer> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseKestrel(kestrel => kestrel.Listen(IPAddress.Loopback, 0));
        builder.Logging.ClearProviders();
        var app = builder.Build();
        var server = new JwksServer(app);
        app.MapGet("/jwks", () =>
        {
            Interlocked.Increment(ref server._fetches);
            if (server.Down) return Results.StatusCode(StatusCodes.Status503ServiceUnavailable);
            lock (server._keys) return Results.Json(new { keys = server._keys.Select(key => key.ToJwk()).ToArray() });
        });
        await app.StartAsync();
        return server;
    }

    public Ed25519SecurityKey AddKey(string keyId)
    {
        var key = Ed25519Tokens.NewKey(keyId);
        lock (_keys) _keys.Add(key);
        return key;
    }

    public ValueTask DisposeAsync() => _app.DisposeAsync();
}
