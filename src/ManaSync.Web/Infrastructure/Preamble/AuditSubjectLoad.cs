using ManaSync.Web.Auth;
using ManaSync.Web.Features.Audit;
using ManaSync.Web.Features.Tenancy;
using ManaSync.Web.Infrastructure.Isolation;
using Wolverine.Http;

namespace ManaSync.Web.Infrastructure.Preamble;

/// <summary>
/// Whose data an audit endpoint (under /audit) reads: the caller's own, or, for an auditor (PROTOCOL §12), the user named by
/// the route's {userId} or <c>?user=</c>. Anyone else naming another user gets 403. An auditor's read is recorded, and the
/// caller it gets reads as the auditor role (<see cref="RowSecurity.AuditorRole"/>): select only, and only while registered.
/// </summary>
public static class AuditSubjectLoad
{
    public const string RoutePrefix = "/audit/";
    public const string UserQuery = "user";
    public const string UserRouteValue = "userId";

    public static async Task<(IResult, Caller?)> LoadAsync(HttpContext http, Memberships memberships, AuditorRegistry auditors, TimeProvider time)
    {
        var self = await memberships.CallerAsync(http.User, http.RequestAborted);
        var subject = http.Request.RouteValues[UserRouteValue] as string is { Length: > 0 } routed ? routed : http.Request.Query[UserQuery].ToString();
        if (subject.Length == 0 || subject == self.UserId) return (WolverineContinue.Result(), self);
        if (!http.User.IsAuditor()) return (ApiError.Forbidden("Only an auditor reads another user's data."), null);

        await auditors.RecordReadAsync(self.UserId, subject, http.Request.Path + http.Request.QueryString, time, http.RequestAborted);
        var spaces = await memberships.SpacesOfAsync(subject, http.RequestAborted);
        return (WolverineContinue.Result(), new Caller(subject, spaces ?? [], spaces is not null, Auditor: self.UserId));
    }
}

/// <summary>An auditor's token reads; it never pushes, imports or deletes (PROTOCOL §12).</summary>
public static class AuditorTokenRefusal
{
    public static IResult Before(HttpContext http) =>
        http.User.IsAuditor() ? ApiError.Forbidden("An auditor's token only reads.") : WolverineContinue.Result();
}

/// <summary>Endpoints only auditors may call (<see cref="AuditorsOnlyAttribute"/>); the auditor is registered first, so row security lets them read.</summary>
public static class AuditorCheck
{
    public static async Task<IResult> BeforeAsync(HttpContext http, AuditorRegistry auditors)
    {
        if (!http.User.IsAuditor()) return ApiError.Forbidden("Only auditors may read this.");
        await auditors.RegisterAsync(http.User.Id(), http.RequestAborted);
        return WolverineContinue.Result();
    }
}

[AttributeUsage(AttributeTargets.Method)]
public sealed class AuditorsOnlyAttribute : Attribute;
