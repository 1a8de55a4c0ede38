using System.Text.Json;
using ManaSync.Web.Auth;
using ManaSync.Web.Infrastructure;

namespace ManaSync.Web.Features.Dev;

/// <summary>The development token issuer's own Ed25519 key.</summary>
public sealed class DevIssuer
{
    public static readonly TimeSpan TokenLifetime = TimeSpan.FromHours(12);

    public Ed25519SecurityKey Key { get; } = Ed25519Tokens.NewKey("dev-" + Guid.NewGuid().ToString("N")[..8]);
}

/// <summary>
/// Development only (no JWKS_URL): POST /dev/token {"sub", "scope"?} issues a token, GET /dev/jwks serves the key.
/// Mapped as minimal-API routes, unlike the Wolverine endpoints, because in any other environment
/// they must not exist at all.
/// </summary>
public static class DevTokenEndpoints
{
    public static void MapDevTokenEndpoints(this WebApplication app)
    {
        var issuer = app.Services.GetRequiredService<DevIssuer>();
        app.Services.GetRequiredService<SigningKeys>().Add(issuer.Key);

        app.MapGet("/dev/jwks", () => Results.Json(new { keys = new[] { issuer.Key.ToJwk() } })).AllowAnonymous();
        app.MapPost("/dev/token", async (HttpRequest request, TimeProvider time) =>
        {
            string? subject = null, scope = null;
            try
            {
                using var body = await JsonDocument.ParseAsync(request.Body);
                if (body.RootElement.ValueKind == JsonValueKind.Object)
                {
                    if (body.RootElement.TryGetProperty("sub", out var sub) && sub.ValueKind == JsonValueKind.String) subject = sub.GetString();
                    if (body.RootElement.TryGetProperty(CurrentUser.ScopeClaim, out var scopes) && scopes.ValueKind == JsonValueKind.String)
                        scope = scopes.GetString();
                }
            }
            catch (JsonException)
            {
            }
            if (string.IsNullOrEmpty(subject)) return ApiError.BadRequest("Send {\"sub\": \"<user id>\"} (and \"scope\": \"audit\" for an auditor).");
            var token = Ed25519Tokens.Issue(issuer.Key, subject, DevIssuer.TokenLifetime, time.GetUtcNow(), scope);
            return Results.Json(new { token }, WireJson.Options);
        }).AllowAnonymous();
    }
}
