using System.Security.Claims;

namespace ManaSync.Web.Auth;

public static class CurrentUser
{
    public const string SubjectClaim = "sub";

    /// <summary>The caller's user id (the token's sub); authentication guarantees it is present.</summary>
    public static string Id(this ClaimsPrincipal principal) =>
        principal.FindFirst(SubjectClaim)?.Value is { Length: > 0 } id
            ? id
            : throw new InvalidOperationException("The request is not authenticated.");
}
