namespace ManaSync.Web.Features.Audit;

/// <summary>
/// Where audit reads find a record's events: <c>manasync.record_events</c> (record, seq_id), one row per event, written by a
/// trigger on the event log in the same transaction as the event (RowSecurity sets it up). A row is visible only with its
/// event (row security).
/// </summary>
/// <remarks>
/// A table of its own, because under row security only a leakproof comparison of a column may drive an index scan: an index
/// on the log's JSON (<c>data ->> 'recordId'</c>) is never used by a request, and every history read scanned the whole log;
/// and a column of Marten's table would be dropped by Marten's own migrations at the next start. The record is the app,
/// table and record id, each but the last followed by U+001F (in SQL: <c>manasync.record_of(data)</c>, the same).
/// </remarks>
public static class RecordIndex
{
    public const string Table = "record_events";

    /// <summary>Indexes the events stored before the trigger existed (once, at the first start with it, then analysed; the benchmark times both).</summary>
    public const string IndexStoredEventsSql =
        "insert into manasync.record_events (record, seq_id, owner, scopes) " +
        "select manasync.record_of(data), seq_id, manasync.stream_owner(stream_id), manasync.scopes_of(data) from manasync.mt_events " +
        "on conflict do nothing";

    private const char Separator = '\u001f';

    public static string Of(string appId, string table, string recordId) => TablePrefix(appId, table) + recordId;

    /// <summary>What the entry of every record of a table starts with.</summary>
    public static string TablePrefix(string appId, string table) => appId + Separator + table + Separator;

    /// <summary>Above the entry of every record of the table, compared byte by byte (U+0020 follows the separator).</summary>
    public static string AfterTable(string appId, string table) => appId + Separator + table + ' ';
}
