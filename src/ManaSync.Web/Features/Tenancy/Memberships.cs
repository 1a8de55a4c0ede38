using System.Text.Json;
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

    private async Task<IReadOnlyList<string>?> AskAsync(string userId, CancellationToken cancellation)
    {
        try
        {
            using var client = httpClients.CreateClient(HttpClientName);
            using var request = new HttpRequestMessage(HttpMethod.Get,
                new Uri(settings.ManaAuthUrl, $"api/v1/internal/users/{Uri.EscapeDataString(userId)}/memberships"));
            request.Headers.Add(ManaServices.ServiceKeyHeader, settings.ManaServiceKey);
            using var response = await client.SendAsync(request, cancellation);
            if (!response.IsSuccessStatusCode)
            {
                logger.LogWarning("The auth service answered {Status} for memberships", (int)response.StatusCode);
                return null;
            }
            using var body = JsonDocument.Parse(await response.Content.ReadAsStreamAsync(cancellation));
            return body.RootElement.GetProperty("memberships").EnumerateArray()
                .Select(membership => membership.GetProperty("organizationId").GetString())
                .OfType<string>()
                .Where(id => id.Length > 0)
                .Distinct()
                .ToList();
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException or JsonException
                                      or KeyNotFoundException or InvalidOperationException)
        {
            logger.LogWarning("Could not read memberships from the auth service: {Reason}", e.Message);
            return null;
        }
    }
}
