using System.Reflection;
using ManaSync.Web.Infrastructure.Isolation;
using Wolverine.Http;

namespace ManaSync.Web.Infrastructure.Preamble;

/// <summary>
/// What every endpoint needs settled before it runs, applied by policy so each endpoint only declares it:
/// a route with an {appId} gets it checked (<see cref="AppIdCheck"/>); an endpoint that takes a
/// <see cref="Caller"/> gets the caller with their memberships, resolved once (<see cref="CallerLoad"/>); an
/// endpoint marked <see cref="BillingGatedAttribute"/> gets the billing gate (<see cref="BillingCheck"/>); an operator's
/// endpoint (under /admin) needs the service key (<see cref="ServiceKeyCheck"/>). An auditor's token is refused where an endpoint writes
/// (<see cref="AuditorTokenRefusal"/>); an audit endpoint (under /audit) reads the caller's data or, for an auditor, another user's
/// (<see cref="AuditSubjectLoad"/>, in place of <see cref="CallerLoad"/>). They run
/// in that order, after authentication, so the same situation gets the same answer from every endpoint.
/// </summary>
public static class RequestPreamble
{
    public static void AddRequestPreamble(this WolverineHttpOptions options)
    {
        options.AddMiddleware(typeof(AppIdCheck), chain => chain.RoutePattern?.Parameters.Any(p => p.Name == AppIdCheck.RouteValue) == true);
        options.AddMiddleware(typeof(AuditorTokenRefusal), chain => Writes(chain) && !Under(chain, ServiceKeyCheck.RoutePrefix));
        options.AddMiddleware(typeof(AuditorCheck), chain => chain.Method.Method.GetCustomAttribute<AuditorsOnlyAttribute>() is not null);
        options.AddMiddleware(typeof(CallerLoad), chain => (TakesCaller(chain) || IsBillingGated(chain)) && !Under(chain, AuditSubjectLoad.RoutePrefix));
        options.AddMiddleware(typeof(AuditSubjectLoad), chain => TakesCaller(chain) && Under(chain, AuditSubjectLoad.RoutePrefix));
        options.AddMiddleware(typeof(BillingCheck), IsBillingGated);
        options.AddMiddleware(typeof(ServiceKeyCheck), chain => Under(chain, ServiceKeyCheck.RoutePrefix));
    }

    private static bool Under(HttpChain chain, string prefix) => chain.RoutePattern?.RawText?.StartsWith(prefix) == true;

    private static bool Writes(HttpChain chain) => chain.HttpMethods.Any(method => method is "POST" or "PUT" or "PATCH" or "DELETE");

    private static bool TakesCaller(HttpChain chain) => chain.Method.Method.GetParameters().Any(p => p.ParameterType == typeof(Caller));

    private static bool IsBillingGated(HttpChain chain) => chain.Method.Method.GetCustomAttribute<BillingGatedAttribute>() is not null;
}

/// <summary>Sync (push, pull, stream) needs an active subscription (PROTOCOL §8); export, import and audit never do.</summary>
[AttributeUsage(AttributeTargets.Method)]
public sealed class BillingGatedAttribute : Attribute;
