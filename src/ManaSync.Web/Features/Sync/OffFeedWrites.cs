namespace ManaSync.Web.Features.Sync;

/// <summary>
/// Transactions that write nothing the feed reads (a rebuild building its new table beside the live one) say so as their
/// first statement, and a read waiting for the commit horizon (<see cref="ChangeFeed"/>) does not wait for them: none of
/// their ids ever becomes a position in the live view. Without it every pull and push answered during a rebuild waited for
/// the rebuild's writes (docs/benchmarks.md "Rebuild").
/// </summary>
/// <remarks>
/// The mark is a shared transaction-level advisory lock, so it ends with the transaction and is listed in
/// <c>pg_locks</c> beside the transaction's own id lock under the same virtual transaction; PostgreSQL shows the lock
/// table as one consistent snapshot, readable by every role. A transaction that ended between the snapshot and the
/// look at the locks is simply waited for again. A writer of the live view never takes the mark (the rebuild's switch
/// included: its id becomes the reissued records' position).
/// </remarks>
public static class OffFeedWrites
{
    private const string Key = "7881702187703299685"; // "manasync" in ASCII, plus 2

    /// <summary>The first statement of a transaction whose writes no feed reads.</summary>
    public const string MarkSql = $"select pg_advisory_xact_lock_shared({Key})";

    /// <summary>
    /// The commit horizon (<c>pg_snapshot_xmin</c>) leaving out transactions that took the mark: the oldest other
    /// transaction id still running, else the next id to be handed out. The lock table is read once.
    /// </summary>
    public const string HorizonSql =
        "(with locks as materialized (select locktype, mode, granted, virtualtransaction, transactionid, classid, objid, objsubid from pg_locks " +
        "where locktype in ('transactionid', 'advisory') and granted), " +
        "off_feed as (select own.transactionid::text::bigint as xid from locks as own join locks as mark using (virtualtransaction) " +
        "where own.locktype = 'transactionid' and own.mode = 'ExclusiveLock' " +
        $"and mark.locktype = 'advisory' and mark.objsubid = 1 and ((mark.classid::bigint << 32) | mark.objid::bigint) = {Key}) " +
        "select least(pg_snapshot_xmax(snapshot.s)::text::bigint, (select min(x::text::bigint) from pg_snapshot_xip(snapshot.s) as x " +
        "where x::text::bigint % 4294967296 <> all (array(select xid from off_feed)))) " +
        "from (select pg_current_snapshot() as s) as snapshot)";
}
