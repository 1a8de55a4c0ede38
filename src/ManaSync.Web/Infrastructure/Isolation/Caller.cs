using ManaSync.Projections.Records;

namespace ManaSync.Web.Infrastructure.Isolation;

/// <summary>Who a request acts for: the user and the shared spaces they are a member of.</summary>
public sealed record Caller(string UserId, IReadOnlyList<string> Spaces)
{
    /// <summary>The record scopes the caller may read: their own and their spaces'.</summary>
    public IReadOnlyList<string> Scopes => [RecordKey.UserScope(UserId), .. Spaces.Select(RecordKey.SpaceScope)];

    public bool IsMemberOf(string spaceId) => Spaces.Contains(spaceId);
}
