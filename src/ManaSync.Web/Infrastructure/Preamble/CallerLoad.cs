using ManaSync.Web.Features.Tenancy;
using ManaSync.Web.Infrastructure.Isolation;

namespace ManaSync.Web.Infrastructure.Preamble;

/// <summary>Who the request acts for, with their spaces, asked of the auth service (cached) once per request.</summary>
public static class CallerLoad
{
    public static Task<Caller> LoadAsync(HttpContext http, Memberships memberships) =>
        memberships.CallerAsync(http.User, http.RequestAborted);
}
