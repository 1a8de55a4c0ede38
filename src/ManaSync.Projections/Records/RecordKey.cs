using System.Text.Json;
using ManaSync.Events;

namespace ManaSync.Projections.Records;

/// <summary>
/// Identifies one merged record: (scope, app, table, record). The scope is the space for records in a
/// shared space and the user otherwise, so all members of a space merge into the same record.
/// </summary>
public static class RecordKey
{
    public const string PersonalSpacePrefix = "_personal:";

    public static string ScopeOf(string userId, string? spaceId) =>
        IsShared(spaceId, userId) ? SpaceScope(spaceId!) : UserScope(userId);

    public static string UserScope(string userId) => "u:" + userId;

    public static string SpaceScope(string spaceId) => "s:" + spaceId;

    /// <summary>A space other than the user's own personal space.</summary>
    public static bool IsShared(string? spaceId, string userId) =>
        !string.IsNullOrEmpty(spaceId) && spaceId != PersonalSpacePrefix + userId;

    /// <summary>A JSON array, so no character in any part can make two keys collide.</summary>
    public static string For(string scope, string appId, string table, string recordId) =>
        JsonSerializer.Serialize(new[] { scope, appId, table, recordId });

    /// <summary>The scope of the record a change was merged into.</summary>
    public static string Scope(ChangeRecorded change) => change.RecordScope ?? ScopeOf(change.UserId, change.SpaceId);

    /// <summary>The space of a shared space's scope; null for a user's own.</summary>
    public static string? SpaceOf(string scope) => scope.StartsWith("s:", StringComparison.Ordinal) ? scope[2..] : null;

    public static string For(ChangeRecorded change) => For(Scope(change), change.AppId, change.Table, change.RecordId);

    /// <summary>The views a change is applied to: the record's, and the one it left when it moved the record.</summary>
    public static IReadOnlyList<string> Of(ChangeRecorded change) => change.MovedFrom is { } source
        ? [For(source, change.AppId, change.Table, change.RecordId), For(change)]
        : [For(change)];
}
