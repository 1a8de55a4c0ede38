using Marten;
using Npgsql;

namespace ManaSync.Web.Features.Sync;

/// <summary>
/// Transaction-scoped advisory locks that make writers of one stream or record take turns: the view
/// a writer reads is the one it overwrites, and appends to one stream do not race for its next
/// version. One statement takes all locks in hash order, so two writers cannot deadlock.
/// </summary>
public static class WriteLocks
{
    public static string Stream(string appId, string userId) => appId + ":" + userId;

    /// <summary>The lock key of a stream, apart from record keys (which hold ':' too).</summary>
    public static string StreamLockKey(string stream) => "stream:" + stream;

    public static NpgsqlBatchCommand Command(IEnumerable<string> recordKeys, IEnumerable<string> streams) =>
        SessionBatch.Command(
            "select count(pg_advisory_xact_lock(h)) from (select distinct hashtextextended(k, 0) as h from unnest($1::text[]) as k order by h) as locks",
            recordKeys.Concat(streams.Select(StreamLockKey)).ToArray());

    public static async Task TakeAsync(IQuerySession session, IEnumerable<string> recordKeys, IEnumerable<string> streams,
        CancellationToken cancellation)
    {
        await using var batch = SessionBatch.For(session, Command(recordKeys, streams));
        await batch.ExecuteNonQueryAsync(cancellation);
    }
}
