using ManaSync.Web.Features.Sync;
using Wolverine.Http;

namespace ManaSync.Web.Infrastructure.Preamble;

/// <summary>An {appId} names event streams and locks: one the server cannot use is refused before anything else.</summary>
public static class AppIdCheck
{
    public const string RouteValue = "appId";

    public static IResult Before(HttpContext http) =>
        http.GetRouteValue(RouteValue) is string appId && !AppId.IsValid(appId) ? ApiError.BadRequest(AppId.Rule) : WolverineContinue.Result();
}
