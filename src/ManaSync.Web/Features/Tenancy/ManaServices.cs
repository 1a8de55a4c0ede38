using ManaSync.Web.Infrastructure.Isolation;
using System.Security.Claims;
using ManaSync.Web.Auth;

namespace ManaSync.Web.Features.Tenancy;

public static class ManaServices
{
    public const string ServiceKeyHeader = "X-Service-Key";
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(5);

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
    /// own records (<see cref="Caller.Spaces"/> empty) and <paramref name="known"/> is false.
    /// </summary>
    public static async Task<(Caller Caller, bool SpacesKnown)> CallerAsync(this Memberships memberships, ClaimsPrincipal user,
        CancellationToken cancellation)
    {
        var userId = user.Id();
        var spaces = await memberships.SpacesOfAsync(userId, cancellation);
        return (new Caller(userId, spaces ?? []), spaces is not null);
    }
}
