using ManaSync.Web.Infrastructure.Isolation;
using System.Security.Claims;
using System.Text.Json;
using ManaSync.Web.Auth;

namespace ManaSync.Web.Features.Tenancy;

public static class ManaServices
{
    public const string ServiceKeyHeader = "X-Service-Key";
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(5);

    /// <summary>
    /// GETs a JSON answer from another Mana service, sending the service key.
    /// </summary>
    /// <returns>What <paramref name="read"/> makes of it, or null when the service could not answer.</returns>
    public static async Task<T?> AskAsync<T>(this IHttpClientFactory httpClients, string clientName, Uri url, string serviceKey,
        Func<JsonElement, T?> read, ILogger logger, CancellationToken cancellation) where T : class
    {
        try
        {
            using var client = httpClients.CreateClient(clientName);
            using var request = new HttpRequestMessage(HttpMethod.Get, url);
            request.Headers.Add(ServiceKeyHeader, serviceKey);
            using var response = await client.SendAsync(request, cancellation);
            if (!response.IsSuccessStatusCode)
            {
                logger.LogWarning("{Service} answered {Status}", clientName, (int)response.StatusCode);
                return null;
            }
            using var body = await JsonDocument.ParseAsync(await response.Content.ReadAsStreamAsync(cancellation), default, cancellation);
            return read(body.RootElement);
        }
        // A request that was itself cancelled is not an answer: it must not be cached as the service failing.
        catch (Exception e) when (!cancellation.IsCancellationRequested &&
                                  e is HttpRequestException or TaskCanceledException or JsonException
                                      or KeyNotFoundException or InvalidOperationException)
        {
            logger.LogWarning("Could not ask {Service}: {Reason}", clientName, e.Message);
            return null;
        }
    }

    public static IServiceCollection AddManaServices(this IServiceCollection services)
    {
        services.AddHttpClient(Memberships.HttpClientName, client => client.Timeout = Timeout);
        services.AddHttpClient(BillingGate.HttpClientName, client => client.Timeout = Timeout);
        services.AddSingleton<Memberships>();
        services.AddSingleton<BillingGate>();
        return services;
    }

    /// <summary>
    /// The caller with their spaces. When the auth service cannot say, reads fall back to the user's
    /// own records (<see cref="Caller.Spaces"/> empty, <see cref="Caller.SpacesKnown"/> false).
    /// </summary>
    public static async Task<Caller> CallerAsync(this Memberships memberships, ClaimsPrincipal user, CancellationToken cancellation)
    {
        var userId = user.Id();
        var spaces = await memberships.SpacesOfAsync(userId, cancellation);
        return new Caller(userId, spaces ?? [], spaces is not null);
    }
}
