using System.Collections.Concurrent;
using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace ManaSync.Testing;

/// <summary>
/// Stand-ins for the auth service (memberships) and the credits service (sync status) on a real
/// loopback port, with switches to make either fail, and a record of the service keys received.
/// </summary>
public sealed class FakeManaServices : IAsyncDisposable
{
    private readonly WebApplication _app;

    private FakeManaServices(WebApplication app) => _app = app;

    public string Url => _app.Urls.Single() + "/";
    public ConcurrentDictionary<string, string[]> Spaces { get; } = new();
    public ConcurrentDictionary<string, bool> Inactive { get; } = new();
    public ConcurrentBag<string> ServiceKeys { get; } = [];
    public volatile bool AuthDown;
    public volatile bool CreditsDown;

    public static async Task<FakeManaServices> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(kestrel => kestrel.Listen(IPAddress.Loopback, 0));
        var app = builder.Build();
        var fake = new FakeManaServices(app);
        app.MapGet("/api/v1/internal/users/{userId}/memberships", (string userId, HttpRequest request) =>
        {
            fake.ServiceKeys.Add(request.Headers["X-Service-Key"].ToString());
            if (fake.AuthDown) return Results.StatusCode(StatusCodes.Status503ServiceUnavailable);
            var memberships = fake.Spaces.GetValueOrDefault(userId, []).Select(id => new { organizationId = id, role = "member" });
            return Results.Json(new { userId, memberships });
        });
        app.MapGet("/api/v1/internal/sync/status/{userId}", (string userId, HttpRequest request) =>
        {
            fake.ServiceKeys.Add(request.Headers["X-Service-Key"].ToString());
            return fake.CreditsDown
                ? Results.StatusCode(StatusCodes.Status500InternalServerError)
                : Results.Json(new { active = !fake.Inactive.GetValueOrDefault(userId), plan = "test" });
        });
        await app.StartAsync();
        return fake;
    }

    public ValueTask DisposeAsync() => _app.DisposeAsync();
}
