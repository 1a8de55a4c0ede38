using System.Security.Cryptography;
using System.Text;
using ManaSync.Web.Configuration;
using ManaSync.Web.Features.Tenancy;
using Wolverine.Http;

namespace ManaSync.Web.Infrastructure.Preamble;

/// <summary>Operators' endpoints (under /admin) answer callers holding the service key (MANA_SERVICE_KEY), not users' tokens.</summary>
public static class ServiceKeyCheck
{
    public const string RoutePrefix = "/admin/";

    public static IResult Before(HttpContext http, ServerSettings settings) =>
        http.Request.Headers[ManaServices.ServiceKeyHeader].ToString() is { Length: > 0 } key &&
        CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(key), Encoding.UTF8.GetBytes(settings.ManaServiceKey))
            ? WolverineContinue.Result()
            : ApiError.Unauthorized($"This endpoint needs the service key in {ManaServices.ServiceKeyHeader}.");
}
