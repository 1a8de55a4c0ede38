using ManaSync.Projections.Records;

namespace ManaSync.Web.Infrastructure.Isolation;

/// <summary>Who a request acts for: the user and the shared spaces they are a member of.</summary>
/// <param name="SpacesKnown">False when the auth service could not say: <see cref="Spaces"/> is then empty, and reads
/// fall back to the user's own records.</param>
/// <param name="Auditor">The auditor reading this user's data (PROTOCOL §12), read-only; null when the user acts for themself.</param>
public sealed record Caller(string UserId, IReadOnlyList<string> Spaces, bool SpacesKnown = true, string? Auditor = null)
{
    /// <summary>The record scopes the caller may read: their own and their spaces'.</summary>
    public IReadOnlyList<string> Scopes { get; } = [RecordKey.UserScope(UserId), .. Spaces.Select(RecordKey.SpaceScope)];

    public bool IsMemberOf(string spaceId) => Spaces.Contains(spaceId);
}
