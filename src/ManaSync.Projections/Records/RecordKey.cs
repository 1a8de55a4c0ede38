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
        !string.IsNullOrEmpty(spaceId) && !(spaceId.Length == PersonalSpacePrefix.Length + userId.Length &&
                                            spaceId.StartsWith(PersonalSpacePrefix, StringComparison.Ordinal) &&
                                            spaceId.EndsWith(userId, StringComparison.Ordinal));

    /// <summary>Whether a change's own spaceId names this scope.</summary>
    public static bool Names(string scope, string userId, string? spaceId) =>
        IsShared(spaceId, userId) ? IsScope(scope, "s:", spaceId!) : IsScope(scope, "u:", userId);

    private static bool IsScope(string scope, string prefix, string id) =>
        scope.Length == prefix.Length + id.Length && scope.StartsWith(prefix, StringComparison.Ordinal) && scope.EndsWith(id, StringComparison.Ordinal);

    /// <summary>
    /// A JSON array, so no character in any part can make two keys collide. Written by hand when no part
    /// needs escaping (pushes compute several keys per change); JsonSerializer writes the others.
    /// </summary>
    public static string For(string scope, string appId, string table, string recordId) =>
        Plain(scope) && Plain(appId) && Plain(table) && Plain(recordId)
            ? string.Concat(["[\"", scope, "\",\"", appId, "\",\"", table, "\",\"", recordId, "\"]"])
            : JsonSerializer.Serialize(new[] { scope, appId, table, recordId });

    /// <summary>Only characters JSON writes as they are.</summary>
    private static bool Plain(string part)
    {
        foreach (var c in part)
            if (!(char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' or ':' or '@'))
                return false;
        return true;
    }

    /// <summary>The scope of the record a change was merged into.</summary>
    public static string Scope(ChangeRecorded change) => change.RecordScope ?? ScopeOf(change.UserId, change.SpaceId);

    /// <summary>The space of a shared space's scope; null for a user's own.</summary>
    public static string? SpaceOf(string scope) => scope.StartsWith("s:", StringComparison.Ordinal) ? scope[2..] : null;

    public static string For(ChangeRecorded change) => For(Scope(change), change.AppId, change.Table, change.RecordId);

    /// <summary>The scopes a change touches: its record's, and the one it moved the record out of.</summary>
    public static IReadOnlyList<string> ScopesOf(ChangeRecorded change) => change.MovedFrom is { } left ? [Scope(change), left] : [Scope(change)];

    /// <summary>The views a change is applied to: the one it left when it moved the record, then the record's own.</summary>
    public static IReadOnlyList<string> Of(ChangeRecorded change) => change.MovedFrom is { } source
        ? [For(source, change.AppId, change.Table, change.RecordId), For(change)]
        : [For(change)];
}
