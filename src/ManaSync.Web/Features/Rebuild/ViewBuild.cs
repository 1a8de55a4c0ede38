using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Text.Json;
using System.Text.RegularExpressions;
using ManaSync.Events;
using ManaSync.Events.Upcasting;
using ManaSync.Projections.Records;
using ManaSync.Web.Features.Sync;
using ManaSync.Web.Features.WritePath;
using ManaSync.Web.Infrastructure;
using ManaSync.Web.Infrastructure.Isolation;
using Marten;
using Npgsql;

namespace ManaSync.Web.Features.Rebuild;

/// <summary>
/// Builds a new record view beside the live one in one database (a shard), from its event log, while the live view
/// keeps serving, then puts it in the live one's place (docs/schema-evolution.md, docs/architecture.md "Rebuild").
/// </summary>
/// <remarks>
/// <para><b>Building.</b> Events are merged in their log order (<c>seq_id</c>, the order their writers' locks gave
/// them, which the live projection followed) into views held in memory, a page at a time (the next page read while one
/// merges), and written to <see cref="Table"/> every <paramref name="viewsPerFlush"/> changed views, followed by the progress
/// (<see cref="RebuildProgress"/>), so a build killed at any point resumes from its last flush. The table gets the live
/// one's indexes (but its key) only once built: creating them then costs less than keeping them up to date while it
/// fills. Its writes say they are off the feed (<see cref="OffFeedWrites"/>): a transaction id holds every reader's
/// cursor below it, and reads do not wait for these.</para>
/// <para><b>Late commits.</b> A writer takes its <c>seq_id</c> when it inserts, and may commit after a page with higher
/// ones was read: those events are invisible to that page. Every page therefore notes the transactions running when it
/// was read, all of them (<see cref="RunningAtOrAfterAsync"/>: their rows are the only ones below its end it may have missed),
/// and later pages read those transactions' rows (by <c>xmin</c>) once they have ended, before any newer event; a record's
/// later events wait for its earlier writer's lock, so its events are still merged in log order. This holds because a writer
/// takes its transaction id in its first statement (<see cref="CallerSessions"/>), before any position in the log: one
/// that was not running at a page takes positions above that page's end.</para>
/// <para><b>Switching.</b> Records whose state, as clients see it, differs between the two views are listed while
/// pushes go on. Then one transaction takes a position (a writer's, which holds readers' cursors below it until it
/// commits), marks the new views of those records as reissued there (<see cref="RecordView.Reissued"/>: readers with
/// older cursors receive them whole), locks the event log against new events (in-flight pushes finish first), merges
/// the last events, compares the records they touched once more, and puts the new table in the old one's place with
/// its indexes' names. Reads of the views wait for that transaction only for the rename.</para>
/// </remarks>
/// <param name="viewsPerFlush">Views held in memory, and written with the progress once so many have changed (or a minute has
/// passed): a record's events are spread over the log, and each flush writes a view that changed since the last again, so
/// the fewer flushes, the fewer writes (measured: docs/benchmarks.md "Rebuild").</param>
public sealed partial class ViewBuild(NpgsqlDataSource database, ISerializer serializer, ChangeUpcasting upcasting, bool stamped, int viewsPerFlush)
{
    /// <summary>The table the new view is built in.</summary>
    public const string Table = "recordview_next";

    private const string Schema = MartenSetup.Schema;
    private const string Live = RecordViewUpsert.Table;
    private const string Changed = "recordview_next_changed";
    private const int PageSize = 10_000;

    /// <summary>How long changed views are held at most: what a killed build merges again.</summary>
    private static readonly TimeSpan FlushEvery = TimeSpan.FromMinutes(1);

    /// <summary>
    /// Views written per statement (and transaction) by a flush: small (5–10 ms), so that a build pausing after each while
    /// requests work leaves them PostgreSQL often.
    /// </summary>
    private const int FlushChunk = 200;

    private readonly RecordViewUpsert _upsert = new(Schema, Table);
    private readonly Stopwatch _reading = new(), _merging = new(), _writing = new(), _indexing = new(), _comparing = new(), _switching = new(), _locking = new();
    private readonly Stopwatch _sinceOpened = Stopwatch.StartNew();
    private readonly Stopwatch _sinceFlush = Stopwatch.StartNew();
    private long _viewsWritten, _pausedTicks;
    private readonly Dictionary<string, RecordView> _cache = new();
    private readonly HashSet<string> _dirty = [];

    /// <summary>Live records the new view lacked when it was first compared in full (most are new since, and merged by the switch).</summary>
    private readonly HashSet<string> _absent = [];

    /// <summary>Live records the new view still lacked at the switch, kept as they were (<see cref="KeepAbsentAsync"/>).</summary>
    public long KeptRecords { get; private set; }

    /// <summary>
    /// Opens the build: resumes one left unfinished, or starts a new one (an empty table beside the live one, with its
    /// row security). A build that ended (switched, or a dry run that compared) is started afresh.
    /// </summary>
    public async Task<RebuildProgress> OpenAsync(bool dryRun, CancellationToken cancellation)
    {
        await RebuildProgress.CreateAsync(database, cancellation);
        var progress = await RebuildProgress.ReadAsync(database, cancellation);
        if (progress is { Phase: RebuildPhase.Building or RebuildPhase.Comparing } && await TableExistsAsync(cancellation))
            return await (progress with { DryRun = dryRun, Error = null }).SaveAsync(database, cancellation);

        await using var connection = await database.OpenConnectionAsync(cancellation);
        await using var transaction = await connection.BeginTransactionAsync(cancellation);
        await using (var create = new NpgsqlCommand(
                         $"""
                         drop table if exists {Schema}.{Table};
                         create table {Schema}.{Table} (like {Schema}.{Live} including all excluding indexes);
                         alter table {Schema}.{Table} add primary key (id);
                         {RowSecurity.ViewPolicySql($"{Schema}.{Table}")}
                         drop table if exists {Schema}.{Changed};
                         create table {Schema}.{Changed} (id varchar primary key);
                         """, connection, transaction))
            await create.ExecuteNonQueryAsync(cancellation);
        await transaction.CommitAsync(cancellation);
        var total = await EventsAfterAsync(0, cancellation);
        return await RebuildProgress.StartAsync(database, dryRun, total, cancellation);
    }

    /// <summary>A page merged: how many events, the records they touched, and the progress after it (written with the views at the next flush).</summary>
    public sealed record Page(int Merged, IReadOnlyCollection<string> Touched, RebuildProgress Progress);

    /// <summary>Merges the next page of events into the views in memory; writes those changed so far, with the progress, when they are many.</summary>
    public async Task<Page> BuildPageAsync(RebuildProgress progress, CancellationToken cancellation)
    {
        // The page after this one is read while this one merges: PostgreSQL sends rows while this process merges.
        _reading.Start();
        var read = _readAhead is { } ahead && ahead.From == progress.Cursor ? await ahead.Read : await ReadPageAsync(progress, cancellation);
        _reading.Stop();
        var next = read.Advance(progress);
        _readAhead = read.Events.Count > 0 ? (next.Cursor, ReadPageAsync(next, cancellation)) : null;
        IReadOnlyCollection<string> touched;
        _merging.Start();
        await using (var connection = await database.OpenConnectionAsync(cancellation))
            touched = await MergeRowsAsync(connection, null, read.Events, read.Keys, cancellation);
        _merging.Stop();
        var page = new Page(read.Events.Count, touched, next);
        return _dirty.Count >= viewsPerFlush || _dirty.Count > 0 && _sinceFlush.Elapsed >= FlushEvery ? page with { Progress = await FlushAsync(page.Progress, cancellation) } : page;
    }

    /// <summary>A page of the log as read (in the newest schema's shape), and where the build stands once it is merged.</summary>
    private sealed record PageRead(IReadOnlyList<ChangeRecorded> Events, IReadOnlyList<IReadOnlyList<string>> Keys, long Cursor, IReadOnlyList<PendingWriter> Pending)
    {
        public RebuildProgress Advance(RebuildProgress before) => before with
        {
            Cursor = Cursor, Pending = Pending, EventsDone = before.EventsDone + Events.Count,
            EventsTotal = Math.Max(before.EventsTotal, before.EventsDone + Events.Count),
        };
    }

    private (long From, Task<PageRead> Read)? _readAhead;

    private async Task<PageRead> ReadPageAsync(RebuildProgress progress, CancellationToken cancellation)
    {
        await using var connection = await database.OpenConnectionAsync(cancellation);
        // One snapshot for the running transactions and the rows read; reading only, it holds no transaction id, so no
        // reader's cursor waits for it.
        await using var transaction = await connection.BeginTransactionAsync(System.Data.IsolationLevel.RepeatableRead, cancellation);
        return await ReadPageAsync(connection, transaction, progress, cancellation);
    }

    /// <summary>
    /// Writes the views changed since the last flush, then this progress: where a resumed build starts. Each chunk of views
    /// is its own transaction, off the feed, and the progress another; a build killed in between merges the events after
    /// the progress again, which leaves the views as they were (merging is idempotent, and each view ends with its own
    /// latest events). While nothing else works in the database, two connections write every other chunk (PostgreSQL
    /// stores one while the next is serialised; 3.4 → 2.1 s for 100,000 views, docs/benchmarks.md); otherwise one, pausing
    /// after each chunk.
    /// </summary>
    public async Task<RebuildProgress> FlushAsync(RebuildProgress progress, CancellationToken cancellation)
    {
        using var timing = new Timing(_writing);
        var chunks = _dirty.Chunk(FlushChunk).ToList();
        var writers = await OthersWorkingAsync(null, null, cancellation) ? 1 : 2;
        await Task.WhenAll(Enumerable.Range(0, writers).Select(async first =>
        {
            await using var connection = await database.OpenConnectionAsync(cancellation);
            for (var i = first; i < chunks.Count; i += writers)
            {
                var started = Stopwatch.GetTimestamp();
                await WriteAsync(connection, null, chunks[i], cancellation);
                await PauseForRequestsAsync(Stopwatch.GetElapsedTime(started), cancellation);
            }
        }));
        await using var connection = await database.OpenConnectionAsync(cancellation);
        return await FlushedAsync(connection, null, progress, cancellation);
    }

    /// <summary>The switch's flush, in its transaction.</summary>
    private async Task<RebuildProgress> FlushAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, RebuildProgress progress,
        CancellationToken cancellation)
    {
        using var timing = new Timing(_writing);
        foreach (var chunk in _dirty.Chunk(FlushChunk)) await WriteAsync(connection, transaction, chunk, cancellation);
        return await FlushedAsync(connection, transaction, progress, cancellation);
    }

    /// <param name="transaction">The switch's transaction; null: the write commits by itself.</param>
    private async Task WriteAsync(NpgsqlConnection connection, NpgsqlTransaction? transaction, string[] keys, CancellationToken cancellation)
    {
        await using var write = new NpgsqlBatch(connection, transaction)
        {
            BatchCommands = { OffFeed(transaction), _upsert.Command(keys.Select(key => _cache[key]).ToList(), serializer) },
        };
        await write.ExecuteNonQueryAsync(cancellation);
        Interlocked.Add(ref _viewsWritten, keys.Length);
    }

    /// <summary>After the views changed are written: forgets them (all views held, when more than a flush writes) and saves the progress.</summary>
    private async Task<RebuildProgress> FlushedAsync(NpgsqlConnection connection, NpgsqlTransaction? transaction, RebuildProgress progress,
        CancellationToken cancellation)
    {
        _dirty.Clear();
        if (_cache.Count > viewsPerFlush) _cache.Clear();
        _sinceFlush.Restart();
        return await progress.SaveAsync(connection, transaction, cancellation);
    }

    /// <summary>Reads a page: the rows of writers that were running at the last page and have ended, then the next rows.</summary>
    private async Task<PageRead> ReadPageAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, RebuildProgress progress,
        CancellationToken cancellation)
    {
        var pending = progress.Pending.Select(p => p with { Xid = p.Xid % XidSpace }).ToList();
        var batch = new NpgsqlBatch(connection, transaction)
        {
            BatchCommands =
            {
                new NpgsqlBatchCommand(
                    "select array(select x::text::bigint from pg_snapshot_xip(s) as x), pg_snapshot_xmax(s)::text::bigint from pg_current_snapshot() as s"),
                SessionBatch.CommandWith($"select seq_id, data from {Schema}.mt_events where seq_id > $1 and seq_id <= $2 and xmin::text::bigint = any($3) order by seq_id",
                    pending.Count == 0 ? progress.Cursor : pending.Min(p => p.Floor), progress.Cursor, pending.Select(p => p.Xid).ToArray()),
                SessionBatch.Command($"select seq_id, data from {Schema}.mt_events where seq_id > $1 order by seq_id limit {PageSize}", progress.Cursor),
            },
        };
        HashSet<long> running;
        var cursor = progress.Cursor;
        var events = new List<ChangeRecorded>();
        await using (batch)
        await using (var reader = await batch.ExecuteReaderAsync(cancellation))
        {
            await reader.ReadAsync(cancellation);
            var listed = reader.GetFieldValue<long[]>(0);
            // Asked now, while the rows stream: the snapshot is taken.
            var unlisted = RunningAtOrAfterAsync(reader.GetInt64(1), cancellation);
            for (var result = 0; result < 2; result++)
            {
                await reader.NextResultAsync(cancellation);
                while (await reader.ReadAsync(cancellation))
                {
                    cursor = Math.Max(cursor, reader.GetInt64(0));
                    events.Add(upcasting.ToCurrent(serializer.FromJson<ChangeRecorded>(reader, 1)));
                }
            }
            running = listed.Concat(await unlisted).Select(xid => xid % XidSpace).ToHashSet();
        }

        // The writers running now may hold rows below the new cursor; those already noted keep their floor.
        var floors = pending.ToDictionary(p => p.Xid, p => p.Floor);
        var stillRunning = running.Select(xid => new PendingWriter(xid, floors.GetValueOrDefault(xid, progress.Cursor))).ToList();
        return new PageRead(events, events.Select(RecordKey.Of).ToList(), cursor, stillRunning);
    }

    /// <summary>Transaction ids as rows carry them (<c>xmin</c>): their low 32 bits.</summary>
    private const long XidSpace = 1L << 32;

    /// <summary>
    /// The transactions that were running when a snapshot was taken but that it does not list: a snapshot lists only those
    /// older than its <c>xmax</c> (one past the newest that had ended), and treats every newer one as running. A writer that
    /// took its id after the last one to end is such a transaction, and its rows may lie below a page's end: an older writer
    /// can take a later position and commit first (measured: a rebuild under pushes switched without one push's first events).
    /// Asked after the snapshot was taken: first the ids running now (each holds a lock on its own id), then one past the
    /// newest that has ended now. One of those running at the snapshot has either ended since (so it is below the second),
    /// or still runs, and then ran when the first was asked.
    /// </summary>
    private async Task<IEnumerable<long>> RunningAtOrAfterAsync(long snapshotXmax, CancellationToken cancellation)
    {
        await using var connection = await database.OpenConnectionAsync(cancellation);
        // Two round trips, each its own transaction and snapshot, whatever the database's default isolation.
        await using var holdingTheirIds = new NpgsqlCommand(
            "select array(select transactionid::text::bigint from pg_locks where locktype = 'transactionid' and mode = 'ExclusiveLock' and granted)", connection);
        var running = (long[])(await holdingTheirIds.ExecuteScalarAsync(cancellation))!;
        await using var endedBelow = new NpgsqlCommand("select pg_snapshot_xmax(pg_current_snapshot())::text::bigint", connection);
        var ended = (long)(await endedBelow.ExecuteScalarAsync(cancellation))!;
        return running.Concat(Range(snapshotXmax, ended));

        static IEnumerable<long> Range(long from, long to) { for (var xid = from; xid < to; xid++) yield return xid; }
    }

    /// <summary>Merges events (in the newest schema's shape), in order, into the views they touch (read into memory first when not there).</summary>
    /// <param name="keys">Each event's <see cref="RecordKey.Of"/> (worked out as the page is read, beside the merge of the one before).</param>
    private async Task<IReadOnlyCollection<string>> MergeRowsAsync(NpgsqlConnection connection, NpgsqlTransaction? transaction,
        IReadOnlyList<ChangeRecorded> changes, IReadOnlyList<IReadOnlyList<string>> keys, CancellationToken cancellation)
    {
        if (changes.Count == 0) return [];
        var touched = new HashSet<string>(keys.SelectMany(of => of));
        var missing = touched.Where(key => !_cache.ContainsKey(key)).ToArray();
        if (missing.Length > 0)
            foreach (var view in await ReadViewsAsync(connection, transaction, Table, missing, cancellation)) _cache[view.Id] = view;
        for (var i = 0; i < changes.Count; i++) RecordViews.Apply(_cache, changes[i], keys[i]);
        // A view the merge created is in the cache now; one it did not (a move's source absent here) is not touched.
        touched.RemoveWhere(key => !_cache.ContainsKey(key));
        _dirty.UnionWith(touched);
        return touched;
    }

    /// <summary>
    /// Gives the new table the live one's indexes (named after them, to take their names at the switch), once it is built,
    /// and its statistics: the planner needs them from the switch on, and autovacuum analysing it then would hold the switch.
    /// </summary>
    public async Task CreateIndexesAsync(CancellationToken cancellation)
    {
        using var timing = new Timing(_indexing);
        var indexes = await IndexesAsync(database, cancellation);
        foreach (var index in indexes.Where(index => index.Table == Live && !indexes.Any(built => built.Table == Table && built.Definition == index.Definition)))
        {
            await using var create = database.CreateCommand(
                $"{OffFeedWrites.MarkSql}; {IndexShape().Replace(index.Sql, $"INDEX {index.Name}_next ON {Schema}.{Table}", 1)}");
            create.CommandTimeout = 0;
            await create.ExecuteNonQueryAsync(cancellation);
        }
        // Vacuuming takes no transaction id, analysing does (it writes the statistics): apart, so that it can say it is off the feed.
        foreach (var sql in new[] { $"vacuum {Schema}.{Table}", $"{OffFeedWrites.MarkSql}; analyze {Schema}.{Table}" })
        {
            await using var step = database.CreateCommand(sql);
            step.CommandTimeout = 0;
            await step.ExecuteNonQueryAsync(cancellation);
        }
    }

    private sealed record Index(string Table, string Name, string Sql, string Definition);

    /// <summary>The indexes of the live table and the new one, each with its definition without its name and table.</summary>
    private static async Task<List<Index>> IndexesAsync(NpgsqlDataSource database, CancellationToken cancellation)
    {
        await using var connection = await database.OpenConnectionAsync(cancellation);
        return await IndexesAsync(connection, null, cancellation);
    }

    private static async Task<List<Index>> IndexesAsync(NpgsqlConnection connection, NpgsqlTransaction? transaction, CancellationToken cancellation)
    {
        var indexes = new List<Index>();
        await using var read = new NpgsqlCommand("select tablename, indexname, indexdef from pg_indexes where schemaname = $1 and tablename = any($2)",
            connection, transaction) { Parameters = { new() { Value = Schema }, new() { Value = new[] { Live, Table } } } };
        await using var reader = await read.ExecuteReaderAsync(cancellation);
        while (await reader.ReadAsync(cancellation))
            indexes.Add(new Index(reader.GetString(0), reader.GetString(1), reader.GetString(2), IndexShape().Replace(reader.GetString(2), "INDEX ON")));
        return indexes;
    }

    /// <summary>
    /// Compares the new views with the live ones (all, or those under <paramref name="keys"/>), keeping the list of
    /// records whose state as clients see it differs. Returns how many differ in all.
    /// </summary>
    public async Task<long> CompareAsync(IReadOnlyCollection<string>? keys, CancellationToken cancellation)
    {
        // Each page's statements commit by themselves, off the feed (see FlushAsync).
        _comparing.Start();
        await using var connection = await database.OpenConnectionAsync(cancellation);
        var differing = await CompareAsync(connection, null, keys, cancellation);
        if (keys is null) await FindAbsentAsync(connection, cancellation);
        _comparing.Stop();
        return differing;
    }

    /// <summary>Notes the live records the new view lacks, a page of the live table at a time.</summary>
    private async Task FindAbsentAsync(NpgsqlConnection connection, CancellationToken cancellation)
    {
        _absent.Clear();
        await foreach (var (after, end) in IdPagesAsync(connection, null, Live, cancellation))
        {
            var started = Stopwatch.GetTimestamp();
            await using var find = new NpgsqlCommand($"select o.id from {Schema}.{Live} o where o.id > $1 and o.id <= $2 " +
                                                     $"and not exists (select from {Schema}.{Table} n where n.id = o.id)", connection)
            {
                Parameters = { new NpgsqlParameter { Value = after }, new NpgsqlParameter { Value = end } },
            };
            await using (var reader = await find.ExecuteReaderAsync(cancellation))
                while (await reader.ReadAsync(cancellation)) _absent.Add(reader.GetString(0));
            await PauseForRequestsAsync(Stopwatch.GetElapsedTime(started), cancellation);
        }
    }

    /// <summary>
    /// Copies into the new view the live records it still lacks, under the switch's locks: every event is merged by then,
    /// so the log does not give them, and dropping them would take from clients what they were sent. None should be: a
    /// build that misses events is a fault (one was found: docs/benchmarks.md "Rebuild"), and the server logs it as an error.
    /// </summary>
    private async Task KeepAbsentAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, CancellationToken cancellation)
    {
        await using var keep = new NpgsqlBatch(connection, transaction)
        {
            BatchCommands =
            {
                SessionBatch.Command($"insert into {Schema}.{Table} select o.* from {Schema}.{Live} o where o.id = any($1) " +
                                     $"and not exists (select from {Schema}.{Table} n where n.id = o.id)", _absent.ToArray()),
            },
        };
        KeptRecords = await keep.ExecuteNonQueryAsync(cancellation);
    }

    private async Task<long> CompareAsync(NpgsqlConnection connection, NpgsqlTransaction? transaction, IReadOnlyCollection<string>? keys,
        CancellationToken cancellation)
    {
        if (keys is null)
        {
            await using (var clear = new NpgsqlCommand($"truncate {Schema}.{Changed}", connection, transaction))
                await clear.ExecuteNonQueryAsync(cancellation);
            // A page of the whole table is its next PageSize views, however few differ, so that no statement reads it all.
            await foreach (var (after, end) in IdPagesAsync(connection, transaction, Table, cancellation))
                await ComparePageAsync(connection, transaction, SessionBatch.CommandWith($"{Pairs} where n.id > $1 and n.id <= $2 and {Differ}", after, end),
                    null, cancellation);
        }
        else
            foreach (var chunk in keys.Chunk(PageSize))
                await ComparePageAsync(connection, transaction, SessionBatch.Command($"{Pairs} where n.id = any($1) and {Differ}", chunk), chunk, cancellation);
        await using var count = new NpgsqlCommand($"select count(*) from {Schema}.{Changed}", connection, transaction);
        return (long)(await count.ExecuteScalarAsync(cancellation))!;
    }

    /// <summary>Compares the pairs a statement reads, and notes those that differ as clients see them.</summary>
    /// <param name="again">Records compared before, which start again from "same"; null: none.</param>
    private async Task ComparePageAsync(NpgsqlConnection connection, NpgsqlTransaction? transaction, NpgsqlBatchCommand readPairs, string[]? again,
        CancellationToken cancellation)
    {
        var started = Stopwatch.GetTimestamp();
        var pairs = new List<(string Id, RecordView New, RecordView? Old)>();
        await using (var read = new NpgsqlBatch(connection, transaction) { BatchCommands = { readPairs } })
        await using (var reader = await read.ExecuteReaderAsync(cancellation))
            while (await reader.ReadAsync(cancellation))
                pairs.Add((reader.GetString(0), serializer.FromJson<RecordView>(reader, 1),
                    await reader.IsDBNullAsync(2, cancellation) ? null : serializer.FromJson<RecordView>(reader, 2)));
        var differ = pairs.Where(pair => pair.Old is null || Fingerprint(pair.New) != Fingerprint(pair.Old)).Select(pair => pair.Id).ToArray();
        await using (var note = new NpgsqlBatch(connection, transaction)
                     {
                         BatchCommands =
                         {
                             OffFeed(transaction),
                             again is null ? new NpgsqlBatchCommand("select") : SessionBatch.Command($"delete from {Schema}.{Changed} where id = any($1)", again),
                             SessionBatch.Command($"insert into {Schema}.{Changed} (id) select unnest($1::varchar[]) on conflict do nothing", differ),
                         },
                     })
            await note.ExecuteNonQueryAsync(cancellation);
        if (transaction is null) await PauseForRequestsAsync(Stopwatch.GetElapsedTime(started), cancellation);
    }

    /// <summary>The new views beside the live ones (null where there is none), to compare.</summary>
    private const string Pairs = $"select n.id, n.data, o.data from {Schema}.{Table} n left join {Schema}.{Live} o on o.id = n.id";

    /// <summary>Views stored the same are the same; only the others are read and compared as clients see them.</summary>
    private const string Differ = "n.data is distinct from o.data";

    /// <summary>
    /// A table's ids (its key) in pages of <see cref="PageSize"/>, each as the last id before it and its own last: a
    /// statement per page can then work on a page, whatever the table's size and however few rows the work touches.
    /// </summary>
    private static async IAsyncEnumerable<(string After, string End)> IdPagesAsync(NpgsqlConnection connection, NpgsqlTransaction? transaction,
        string table, [EnumeratorCancellation] CancellationToken cancellation)
    {
        for (var after = ""; ;)
        {
            await using var next = new NpgsqlCommand($"select max(id) from (select id from {Schema}.{table} where id > $1 order by id limit {PageSize}) as page",
                connection, transaction) { Parameters = { new NpgsqlParameter { Value = after } } };
            if (await next.ExecuteScalarAsync(cancellation) is not string end) yield break;
            yield return (after, end);
            after = end;
        }
    }

    /// <summary>What clients hold of a record: whether it is alive and where, and each live field's value and updatedAt.</summary>
    public static string Fingerprint(RecordView view) => JsonSerializer.Serialize(new
    {
        live = view.IsLive,
        movedTo = view.MovedTo,
        placedAs = view.PlacedAs,
        fields = LiveState.Of(view).OrderBy(field => field.Name, StringComparer.Ordinal)
            .Select(field => new object[] { field.Name, field.Value.GetRawText(), field.Write.Stamp.UtcTicks }),
    });

    /// <summary>
    /// Puts the new view in the live one's place (see the remarks), after merging the last events and comparing the
    /// records they touched. Returns how many records were reissued.
    /// </summary>
    /// <param name="touched">Records touched since the last comparison.</param>
    public async Task<long> SwitchAsync(RebuildProgress progress, IReadOnlyCollection<string> touched, CancellationToken cancellation)
    {
        using var timing = new Timing(_switching);
        await using var connection = await database.OpenConnectionAsync(cancellation);
        await using var transaction = await connection.BeginTransactionAsync(cancellation);
        long reissuedAt;
        await using (var take = new NpgsqlCommand($"select {(stamped ? FeedStamps.TakeSql : RowSecurity.TransactionIdSql)}", connection, transaction))
            reissuedAt = (long)(await take.ExecuteScalarAsync(cancellation))!;
        await ReissueAsync(connection, transaction, reissuedAt, cancellation);

        // PostgreSQL cancels an autovacuum holding a table that a lock waits for once the wait has lasted deadlock_timeout
        // (1 s by default); only a superuser may shorten it. After a large import the switch waited that second for the log.
        await using (var sooner = new NpgsqlCommand("select set_config('deadlock_timeout', '50ms', true) where current_setting('is_superuser') = 'on'",
                         connection, transaction))
            await sooner.ExecuteNonQueryAsync(cancellation);

        // No event or view is written from here until the switch commits: writers under way end first, the others wait
        // at their first lock, holding nothing this needs (a writer that has read the live view and waits to append
        // would deadlock with the rename). The log's own lock keeps out any writer outside the write path.
        await LockPatientlyAsync(connection, transaction, $"select pg_advisory_xact_lock({WriteLocks.ViewWritersSql})", cancellation);
        await LockPatientlyAsync(connection, transaction, $"lock table {Schema}.mt_events in exclusive mode", cancellation);
        var last = new HashSet<string>(touched);
        _readAhead = null;
        while (await ReadPageAsync(connection, transaction, progress, cancellation) is { Events.Count: > 0 } read)
        {
            last.UnionWith(await MergeRowsAsync(connection, transaction, read.Events, read.Keys, cancellation));
            progress = read.Advance(progress);
        }
        progress = await FlushAsync(connection, transaction, progress, cancellation);
        await KeepAbsentAsync(connection, transaction, cancellation);
        var reissued = await CompareAsync(connection, transaction, last, cancellation);
        await ReissueAsync(connection, transaction, reissuedAt, cancellation);
        await LockPatientlyAsync(connection, transaction, $"lock table {Schema}.{Live}, {Schema}.{Table} in access exclusive mode", cancellation);
        await ReplaceLiveAsync(connection, transaction, cancellation);
        await (progress with { Phase = RebuildPhase.Switched, ChangedRecords = reissued }).SaveAsync(connection, transaction, cancellation);
        await transaction.CommitAsync(cancellation);
        return reissued;
    }

    /// <summary>The application name of a rebuild's connections, which tells its work from everyone else's.</summary>
    public const string ApplicationName = "manasync-rebuild";

    /// <summary>Whether sessions other than the rebuild's (requests of any node) are working in the database now.</summary>
    public async Task<bool> OthersWorkingAsync(NpgsqlConnection? connection, NpgsqlTransaction? transaction, CancellationToken cancellation)
    {
        const string sql = "select exists (select from pg_stat_activity where datname = current_database() and state = 'active' " +
                           $"and pid <> pg_backend_pid() and application_name <> '{ApplicationName}' and backend_type = 'client backend')";
        await using var check = connection is null ? database.CreateCommand(sql) : new NpgsqlCommand(sql, connection, transaction);
        return (bool)(await check.ExecuteScalarAsync(cancellation))!;
    }

    /// <summary>
    /// While other sessions are working in the database, pauses twice as long as the last step took (at most a second):
    /// the build then takes at most a third of what PostgreSQL and the machine give, and runs at full speed when nothing
    /// else does.
    /// </summary>
    public async Task PauseForRequestsAsync(TimeSpan step, CancellationToken cancellation)
    {
        if (!await OthersWorkingAsync(null, null, cancellation)) return;
        var pause = 2 * step < MaxPause ? 2 * step : MaxPause;
        await Task.Delay(pause, cancellation);
        Interlocked.Add(ref _pausedTicks, pause.Ticks);
    }

    private static readonly TimeSpan MaxPause = TimeSpan.FromSeconds(1);

    /// <summary>
    /// Takes a lock. While requests are working it asks a moment at a time: requests asking after a lock is
    /// asked for queue behind it, and what may hold the tables meanwhile (autovacuum, which PostgreSQL cancels only after a
    /// second of waiting) would hold them all back. Otherwise, or after a few seconds, it waits in full.
    /// </summary>
    /// <param name="lockSql">The statement that takes the lock (a table lock, or an advisory lock).</param>
    private async Task LockPatientlyAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, string lockSql, CancellationToken cancellation)
    {
        using var timing = new Timing(_locking);
        for (var attempt = 0; attempt < 20 && await OthersWorkingAsync(connection, transaction, cancellation); attempt++)
        {
            await transaction.SaveAsync("patient_lock", cancellation);
            try
            {
                await using var take = new NpgsqlCommand($"set local lock_timeout = '100ms'; {lockSql}; set local lock_timeout = 0",
                    connection, transaction);
                await take.ExecuteNonQueryAsync(cancellation);
                await transaction.ReleaseAsync("patient_lock", cancellation);
                return;
            }
            catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.LockNotAvailable)
            {
                await transaction.RollbackAsync("patient_lock", cancellation);
                await Task.Delay(TimeSpan.FromMilliseconds(200), cancellation);
            }
        }
        await using var wait = new NpgsqlCommand(lockSql, connection, transaction);
        await wait.ExecuteNonQueryAsync(cancellation);
    }

    /// <summary>
    /// The first statement of a write of the build: outside the switch it writes nothing readers read, and says so, so that
    /// reads do not wait for it (<see cref="OffFeedWrites"/>); the switch's position is one they must wait for.
    /// </summary>
    private static NpgsqlBatchCommand OffFeed(NpgsqlTransaction? transaction) => new(transaction is null ? OffFeedWrites.MarkSql : "select");

    /// <summary>
    /// Marks the new views of the records that differ as reissued at this position (not moving any back), a page of the
    /// list at a time: a schema change may change every record, and no statement's time should grow with their number.
    /// </summary>
    private static async Task ReissueAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, long at, CancellationToken cancellation)
    {
        await foreach (var (after, end) in IdPagesAsync(connection, transaction, Changed, cancellation))
        {
            await using var reissue = new NpgsqlBatch(connection, transaction)
            {
                BatchCommands =
                {
                    SessionBatch.CommandWith(
                        $"""
                        update {Schema}.{Table} n
                        set position_tx = greatest(n.position_tx, $1), position_index = case when n.position_tx > $1 then n.position_index else 0 end,
                            sole_client = null,
                            data = n.data || jsonb_build_object('reissued', jsonb_build_object('tx', $1, 'index', 0),
                                                               'positionTx', greatest(n.position_tx, $1),
                                                               'positionIndex', case when n.position_tx > $1 then n.position_index else 0 end)
                        from {Schema}.{Changed} c
                        where c.id > $2 and c.id <= $3 and c.id = n.id and (n.data -> 'reissued' ->> 'tx') is distinct from $1::text
                        """, at, after, end),
                },
            };
            await reissue.ExecuteNonQueryAsync(cancellation);
        }
    }

    /// <summary>Drops the live table and gives the new one its name, and its indexes their names (Marten checks them by name).</summary>
    private static async Task ReplaceLiveAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, CancellationToken cancellation)
    {
        var indexes = await IndexesAsync(connection, transaction, cancellation);
        var renames = indexes.Where(index => index.Table == Table)
            .Select(index => (index.Name, Original: indexes.FirstOrDefault(live => live.Table == Live && live.Definition == index.Definition)?.Name))
            .Where(rename => rename.Original is not null)
            .Select(rename => $"alter index {Schema}.{rename.Name} rename to {rename.Original};");
        await using var replace = new NpgsqlCommand(
            $"""
            drop table {Schema}.{Live};
            alter table {Schema}.{Table} rename to {Live};
            {string.Join("\n", renames)}
            drop table {Schema}.{Changed};
            """, connection, transaction);
        await replace.ExecuteNonQueryAsync(cancellation);
    }

    /// <summary>Where the build's time went, for the log (docs/benchmarks.md "Rebuild").</summary>
    public string Timings =>
        $"waiting for reads {_reading.Elapsed.TotalSeconds:0.0} s, merging {_merging.Elapsed.TotalSeconds:0.0} s, " +
        $"writing {_viewsWritten} views {_writing.Elapsed.TotalSeconds:0.0} s, indexing {_indexing.Elapsed.TotalSeconds:0.0} s, " +
        $"comparing {_comparing.Elapsed.TotalSeconds:0.0} s, switching {_switching.Elapsed.TotalSeconds:0.0} s " +
        $"(waiting for locks {_locking.Elapsed.TotalSeconds:0.0} s), pausing for requests {TimeSpan.FromTicks(_pausedTicks).TotalSeconds:0.0} s, " +
        $"in all {_sinceOpened.Elapsed.TotalSeconds:0.0} s";

    private readonly struct Timing : IDisposable
    {
        private readonly Stopwatch _watch;
        public Timing(Stopwatch watch) => (_watch = watch).Start();
        public void Dispose() => _watch.Stop();
    }

    [GeneratedRegex(@"INDEX \S+ ON \S+")]
    private static partial Regex IndexShape();

    /// <summary>Events stored after this position in the log (the work left, as far as it is known now: positions a writer that
    /// rolled back took are counted too; counting the rows would read them all).</summary>
    public async Task<long> EventsAfterAsync(long cursor, CancellationToken cancellation)
    {
        await using var count = database.CreateCommand($"select greatest(coalesce(max(seq_id), 0) - $1, 0) from {Schema}.mt_events");
        count.Parameters.Add(new NpgsqlParameter { Value = cursor });
        return (long)(await count.ExecuteScalarAsync(cancellation))!;
    }

    /// <summary>Removes a finished dry run's new view.</summary>
    public async Task DiscardAsync(CancellationToken cancellation)
    {
        await using var drop = database.CreateCommand($"drop table if exists {Schema}.{Table}; drop table if exists {Schema}.{Changed}");
        await drop.ExecuteNonQueryAsync(cancellation);
    }

    private async Task<bool> TableExistsAsync(CancellationToken cancellation)
    {
        await using var exists = database.CreateCommand($"select to_regclass('{Schema}.{Table}') is not null");
        return (bool)(await exists.ExecuteScalarAsync(cancellation))!;
    }

    private async Task<List<RecordView>> ReadViewsAsync(NpgsqlConnection connection, NpgsqlTransaction? transaction, string table, string[] keys,
        CancellationToken cancellation)
    {
        await using var read = Command($"select data from {Schema}.{table} where id = any($1)", (object)keys);
        (read.Connection, read.Transaction) = (connection, transaction);
        var views = new List<RecordView>();
        await using var reader = await read.ExecuteReaderAsync(cancellation);
        while (await reader.ReadAsync(cancellation)) views.Add(serializer.FromJson<RecordView>(reader, 0));
        return views;
    }

    private static NpgsqlCommand Command(string sql, params object[] parameters)
    {
        var command = new NpgsqlCommand(sql);
        foreach (var parameter in parameters) command.Parameters.Add(new NpgsqlParameter { Value = parameter });
        return command;
    }
}
