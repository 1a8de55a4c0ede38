using System.Text.Json;
using ManaSync.Web.Configuration;
using ManaSync.Web.Infrastructure;

namespace ManaSync.Web.Features.Tenancy;

/// <summary>
/// Sync (push, pull, stream) needs an active subscription, as the credits service says. It fails
/// open: when the credits service cannot answer, sync goes on.
/// </summary>
public sealed class BillingGate(IHttpClientFactory httpClients, ServerSettings settings, TimeProvider time, ILogger<BillingGate> logger)
{
    public const string HttpClientName = "mana-credits";
    private readonly ManaServiceCache<SyncStatus> _cache = new(time);

    /// <returns>A 402 to answer with, or null when the user may sync this app.</returns>
    public async Task<IResult?> RefuseAsync(string userId, string appId, CancellationToken cancellation)
    {
        if (settings.BillingExemptApps.Contains(appId)) return null;
        var status = await _cache.GetAsync(userId, () => AskAsync(userId, cancellation));
        return status is { Active: false }
            ? new ApiError("sync_inactive", "Sync is not active for this account; renew the subscription to sync again.")
                .ToResult(StatusCodes.Status402PaymentRequired)
            : null;
    }

    private Task<SyncStatus?> AskAsync(string userId, CancellationToken cancellation) =>
        httpClients.AskAsync(HttpClientName,
            new Uri(settings.ManaCreditsUrl, $"api/v1/internal/sync/status/{Uri.EscapeDataString(userId)}"),
            settings.ManaServiceKey,
            answer => answer.TryGetProperty("active", out var active) && active.ValueKind is JsonValueKind.True or JsonValueKind.False
                ? new SyncStatus(active.GetBoolean())
                : null,
            logger, cancellation);

    private sealed record SyncStatus(bool Active);
}
