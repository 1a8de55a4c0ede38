using System.Security.Claims;

namespace ManaSync.Web.Auth;

public static class CurrentUser
{
    public const string SubjectClaim = "sub";
    public const string ScopeClaim = "scope";
    public const string AuditScope = "audit";

    public static bool HasSubject(ClaimsPrincipal principal) =>
        !string.IsNullOrEmpty(principal.FindFirst(SubjectClaim)?.Value);

    /// <summary>When the caller's token expires (its exp claim), if it says.</summary>
    public static DateTimeOffset? ExpiresAt(this ClaimsPrincipal principal) =>
        long.TryParse(principal.FindFirst("exp")?.Value, out var seconds) ? DateTimeOffset.FromUnixTimeSeconds(seconds) : null;

    /// <summary>The caller's user id (the token's sub); authentication guarantees it is present.</summary>
    public static string Id(this ClaimsPrincipal principal) =>
        principal.FindFirst(SubjectClaim)?.Value is { Length: > 0 } id
            ? id
            : throw new InvalidOperationException("The request is not authenticated.");

    /// <summary>An auditor's token: its space-separated scope claim (or one of several) holds "audit" (PROTOCOL §12).</summary>
    public static bool IsAuditor(this ClaimsPrincipal principal) =>
        principal.FindAll(ScopeClaim).Any(claim => claim.Value.Split(' ', StringSplitOptions.RemoveEmptyEntries).Contains(AuditScope));
}
