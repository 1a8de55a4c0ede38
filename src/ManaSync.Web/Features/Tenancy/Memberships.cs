using ManaSync.Web.Configuration;

namespace ManaSync.Web.Features.Tenancy;

/// <summary>The shared spaces (organisations) a user belongs to, from the auth service.</summary>
public sealed class Memberships(IHttpClientFactory httpClients, ServerSettings settings, TimeProvider time, ILogger<Memberships> logger)
{
    public const string HttpClientName = "mana-auth";
    private readonly ManaServiceCache<IReadOnlyList<string>> _cache = new(time);

    /// <returns>The user's space ids, or null when the auth service could not say.</returns>
    public Task<IReadOnlyList<string>?> SpacesOfAsync(string userId, CancellationToken cancellation) =>
        _cache.GetAsync(userId, () => AskAsync(userId, cancellation));

    private Task<IReadOnlyList<string>?> AskAsync(string userId, CancellationToken cancellation) =>
        httpClients.AskAsync<IReadOnlyList<string>>(HttpClientName,
            new Uri(settings.ManaAuthUrl, $"api/v1/internal/users/{Uri.EscapeDataString(userId)}/memberships"),
            settings.ManaServiceKey,
            answer => answer.GetProperty("memberships").EnumerateArray()
                .Select(membership => membership.GetProperty("organizationId").GetString())
                .OfType<string>()
                .Where(id => id.Length > 0)
                .Distinct()
                .ToList(),
            logger, cancellation);
}
