using System.Reflection;
using ManaSync.Web.Infrastructure.Isolation;
using Wolverine.Http;

namespace ManaSync.Web.Infrastructure.Preamble;

/// <summary>
/// What every endpoint needs settled before it runs, applied by policy so each endpoint only declares it:
/// a route with an {appId} gets it checked (<see cref="AppIdCheck"/>); an endpoint that takes a
/// <see cref="Caller"/> gets the caller with their memberships, resolved once (<see cref="CallerLoad"/>); an
/// endpoint marked <see cref="BillingGatedAttribute"/> gets the billing gate (<see cref="BillingCheck"/>); an operator's
/// endpoint (under /admin) needs the service key (<see cref="ServiceKeyCheck"/>). They run
/// in that order, after authentication, so the same situation gets the same answer from every endpoint.
/// </summary>
public static class RequestPreamble
{
    public static void AddRequestPreamble(this WolverineHttpOptions options)
    {
        options.AddMiddleware(typeof(AppIdCheck), chain => chain.RoutePattern?.Parameters.Any(p => p.Name == AppIdCheck.RouteValue) == true);
        options.AddMiddleware(typeof(CallerLoad), chain => TakesCaller(chain) || IsBillingGated(chain));
        options.AddMiddleware(typeof(BillingCheck), IsBillingGated);
        options.AddMiddleware(typeof(ServiceKeyCheck), chain => chain.RoutePattern?.RawText?.StartsWith(ServiceKeyCheck.RoutePrefix) == true);
    }

    private static bool TakesCaller(HttpChain chain) => chain.Method.Method.GetParameters().Any(p => p.ParameterType == typeof(Caller));

    private static bool IsBillingGated(HttpChain chain) => chain.Method.Method.GetCustomAttribute<BillingGatedAttribute>() is not null;
}

/// <summary>Sync (push, pull, stream) needs an active subscription (PROTOCOL §8); export, import and audit never do.</summary>
[AttributeUsage(AttributeTargets.Method)]
public sealed class BillingGatedAttribute : Attribute;
