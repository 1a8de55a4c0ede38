using System.Text.Json;
using ManaSync.Projections.Records;
using ManaSync.Web.Features.Sync;
using Npgsql;

namespace ManaSync.Web.Features.WritePath;

/// <summary>
/// Transaction-scoped advisory locks that make writers of the same records take turns: the view a
/// writer reads is the one it overwrites, and appends to one stream do not race for its next version.
/// A user's own records are written only through that user's stream of the app, so the stream's lock
/// guards them; a shared space's records are written by every member, so they take turns per space
/// and app. A push therefore holds one lock plus one per shared space it writes, however big it is —
/// a lock per record ran PostgreSQL's lock table out under a few large concurrent pushes. One
/// statement takes all locks in hash order, so two pushes cannot deadlock.
/// </summary>
/// <remarks>
/// Before them it takes <see cref="ViewWritersSql"/> shared: every writer of events and views holds it from its first
/// lock to its end, before it has read or written a table, so a rebuild's switch (which takes it alone) waits for the
/// writers under way and holds back the others where they hold nothing it needs (docs/architecture.md "Rebuilding while serving").
/// </remarks>
public static class WriteLocks
{
    public static string Stream(string appId, string userId) => appId + ":" + userId;

    public static string StreamLockKey(string stream) => "stream:" + stream;

    /// <summary>A JSON array, so no character of the app or space id can make two keys collide.</summary>
    public static string SpaceLockKey(string appId, string spaceScope) =>
        "space:" + JsonSerializer.Serialize(new[] { appId, spaceScope });

    /// <summary>The locks of the shared spaces these writes go into; a user's own records need none beyond the stream's.</summary>
    public static IEnumerable<string> SpaceLockKeys(IEnumerable<(string AppId, string UserId, string? SpaceId)> writes) =>
        writes.Where(write => RecordKey.IsShared(write.SpaceId, write.UserId))
            .Select(write => SpaceLockKey(write.AppId, RecordKey.ScopeOf(write.UserId, write.SpaceId)))
            .Distinct();

    /// <summary>The scope a lock guards: a stream's lock its user's own records, a space's lock that space's.</summary>
    public static string ScopeOf(string lockKey) =>
        lockKey.StartsWith("stream:", StringComparison.Ordinal)
            ? RecordKey.UserScope(lockKey[(lockKey.IndexOf(':', "stream:".Length) + 1)..])
            : JsonSerializer.Deserialize<string[]>(lockKey["space:".Length..])![1];

    /// <summary>The lock every writer of events and views takes shared first (an advisory lock key).</summary>
    public const string ViewWritersSql = "hashtextextended('manasync.view_writers', 0)";

    /// <summary>Takes the writers' lock shared (a one-time filter: before any other), then the given locks in hash order.</summary>
    public static NpgsqlBatchCommand Command(IEnumerable<string> lockKeys) =>
        SessionBatch.Command(
            "select count(pg_advisory_xact_lock(h)) from (select distinct hashtextextended(k, 0) as h from unnest($1::text[]) as k order by h) as locks " +
            $"where (select count(pg_advisory_xact_lock_shared({ViewWritersSql}))) = 1",
            lockKeys.ToArray());
}
