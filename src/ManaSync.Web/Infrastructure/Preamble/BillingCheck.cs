using ManaSync.Web.Features.Tenancy;
using ManaSync.Web.Infrastructure.Isolation;
using Wolverine.Http;

namespace ManaSync.Web.Infrastructure.Preamble;

/// <summary>Refuses sync with 402 when the credits service says the caller's subscription is inactive.</summary>
public static class BillingCheck
{
    public static async Task<IResult> BeforeAsync(HttpContext http, Caller caller, BillingGate billing) =>
        http.GetRouteValue(AppIdCheck.RouteValue) is string appId &&
        await billing.RefuseAsync(caller.UserId, appId, http.RequestAborted) is { } unpaid
            ? unpaid
            : WolverineContinue.Result();
}
