using System.Text.Json;
using System.Text.RegularExpressions;
using ManaSync.Events;
using ManaSync.Events.Upcasting;
using ManaSync.Projections.Records;
using ManaSync.Web.Features.Sync;
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
/// them, which the live projection followed) into <see cref="Table"/>, a page per transaction, together with the
/// progress (<see cref="RebuildProgress"/>), so a build killed at any point resumes where its last page ended.</para>
/// <para><b>Late commits.</b> A writer takes its <c>seq_id</c> when it inserts, and may commit after a page with higher
/// ones was read: those events are invisible to that page. Every page therefore notes the transactions running when it
/// was read (their rows are the only ones below its end it may have missed) and later pages read those transactions'
/// rows (by <c>xmin</c>) once they have ended, before any newer event; a record's later events wait for its earlier
/// writer's lock, so its events are still merged in log order.</para>
/// <para><b>Switching.</b> Records whose state, as clients see it, differs between the two views are listed while
/// pushes go on. Then one transaction takes a position (a writer's, which holds readers' cursors below it until it
/// commits), marks the new views of those records as reissued there (<see cref="RecordView.Reissued"/>: readers with
/// older cursors receive them whole), locks the event log against new events (in-flight pushes finish first), merges
/// the last events, compares the records they touched once more, and puts the new table in the old one's place with
/// its indexes' names. Reads of the views wait for that transaction only for the rename.</para>
/// </remarks>
public sealed partial class ViewBuild(NpgsqlDataSource database, ISerializer serializer, ChangeUpcasting upcasting, bool stamped)
{
    /// <summary>The table the new view is built in.</summary>
    public const string Table = "recordview_next";

    private const string Schema = MartenSetup.Schema;
    private const string Live = RecordViewUpsert.Table;
    private const string Changed = "recordview_next_changed";
    private const int PageSize = 5000;

    private readonly RecordViewUpsert _upsert = new(Schema, Table);

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
                         create table {Schema}.{Table} (like {Schema}.{Live} including all);
                         {RowSecurity.ViewPolicySql($"{Schema}.{Table}")}
                         drop table if exists {Schema}.{Changed};
                         create table {Schema}.{Changed} (id varchar primary key);
                         """, connection, transaction))
            await create.ExecuteNonQueryAsync(cancellation);
        await transaction.CommitAsync(cancellation);
        var total = await EventsAfterAsync(0, cancellation);
        return await RebuildProgress.StartAsync(database, dryRun, total, cancellation);
    }

    /// <summary>A page merged: how many events, the records they touched, and the progress after it.</summary>
    public sealed record Page(int Merged, IReadOnlyCollection<string> Touched, RebuildProgress Progress);

    /// <summary>Merges the next page of events into the new view, in its own transaction.</summary>
    public async Task<Page> BuildPageAsync(RebuildProgress progress, CancellationToken cancellation)
    {
        await using var connection = await database.OpenConnectionAsync(cancellation);
        // One snapshot for the running transactions and the rows read.
        await using var transaction = await connection.BeginTransactionAsync(System.Data.IsolationLevel.RepeatableRead, cancellation);
        var page = await MergeAsync(connection, transaction, progress, cancellation);
        await transaction.CommitAsync(cancellation);
        return page;
    }

    /// <summary>Reads the page (late rows of ended writers first, then the next rows), merges it, writes the views and the progress.</summary>
    private async Task<Page> MergeAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, RebuildProgress progress,
        CancellationToken cancellation)
    {
        var pending = progress.Pending;
        var batch = new NpgsqlBatch(connection, transaction)
        {
            BatchCommands =
            {
                new NpgsqlBatchCommand("select array(select x::text::bigint from pg_snapshot_xip(pg_current_snapshot()) as x)"),
                BatchCommand($"select seq_id, data from {Schema}.mt_events where seq_id > $1 and seq_id <= $2 and xmin::text::bigint = any($3) order by seq_id",
                    pending.Count == 0 ? progress.Cursor : pending.Min(p => p.Floor), progress.Cursor,
                    pending.Select(p => p.Xid % (1L << 32)).ToArray()),
                SessionBatch.Command($"select seq_id, data from {Schema}.mt_events where seq_id > $1 order by seq_id limit {PageSize}", progress.Cursor),
            },
        };
        long[] running;
        var rows = new List<(long Sequence, ChangeRecorded Change)>();
        await using (batch)
        await using (var reader = await batch.ExecuteReaderAsync(cancellation))
        {
            await reader.ReadAsync(cancellation);
            running = reader.GetFieldValue<long[]>(0);
            for (var result = 0; result < 2; result++)
            {
                await reader.NextResultAsync(cancellation);
                while (await reader.ReadAsync(cancellation)) rows.Add((reader.GetInt64(0), serializer.FromJson<ChangeRecorded>(reader, 1)));
            }
        }

        var cursor = rows.Select(row => row.Sequence).Append(progress.Cursor).Max();
        // The writers running now may hold rows below the new cursor; those already noted keep their floor.
        var floors = pending.ToDictionary(p => p.Xid, p => p.Floor);
        var stillRunning = running.Select(xid => new PendingWriter(xid, floors.GetValueOrDefault(xid, progress.Cursor))).ToList();
        var touched = await MergeRowsAsync(connection, transaction, rows.Select(row => row.Change).ToList(), cancellation);
        var next = await (progress with
        {
            Cursor = cursor, Pending = stillRunning, EventsDone = progress.EventsDone + rows.Count,
            EventsTotal = Math.Max(progress.EventsTotal, progress.EventsDone + rows.Count),
        }).SaveAsync(connection, transaction, cancellation);
        return new Page(rows.Count, touched, next);
    }

    /// <summary>Merges events, in order, into the new views they touch, and writes those back.</summary>
    private async Task<IReadOnlyCollection<string>> MergeRowsAsync(NpgsqlConnection connection, NpgsqlTransaction transaction,
        IReadOnlyList<ChangeRecorded> events, CancellationToken cancellation)
    {
        if (events.Count == 0) return [];
        var changes = events.Select(upcasting.ToCurrent).ToList();
        var keys = changes.SelectMany(RecordKey.Of).Distinct().ToArray();
        var views = (await ReadViewsAsync(connection, transaction, Table, keys, cancellation)).ToDictionary(view => view.Id);
        foreach (var change in changes) RecordViews.Apply(views, change);
        await using var write = new NpgsqlBatch(connection, transaction) { BatchCommands = { _upsert.Command(views.Values, serializer) } };
        await write.ExecuteNonQueryAsync(cancellation);
        return views.Keys;
    }

    /// <summary>
    /// Compares the new views with the live ones (all, or those under <paramref name="keys"/>), keeping the list of
    /// records whose state as clients see it differs. Returns how many differ in all.
    /// </summary>
    public async Task<long> CompareAsync(IReadOnlyCollection<string>? keys, CancellationToken cancellation)
    {
        await using var connection = await database.OpenConnectionAsync(cancellation);
        await using var transaction = await connection.BeginTransactionAsync(cancellation);
        var differing = await CompareAsync(connection, transaction, keys, cancellation);
        await transaction.CommitAsync(cancellation);
        return differing;
    }

    private async Task<long> CompareAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, IReadOnlyCollection<string>? keys,
        CancellationToken cancellation)
    {
        var after = "";
        foreach (var chunk in keys is null ? [null] : keys.Chunk(PageSize).Select(chunk => (string[]?)chunk))
        {
            while (true)
            {
                var pairs = new List<(string Id, RecordView New, RecordView? Old)>();
                await using (var read = chunk is null
                                 ? Command($"select n.id, n.data, o.data from {Schema}.{Table} n left join {Schema}.{Live} o on o.id = n.id where n.id > $1 order by n.id limit {PageSize}", after)
                                 : Command($"select n.id, n.data, o.data from {Schema}.{Table} n left join {Schema}.{Live} o on o.id = n.id where n.id = any($1)", (object)chunk))
                {
                    read.Connection = connection;
                    read.Transaction = transaction;
                    await using var reader = await read.ExecuteReaderAsync(cancellation);
                    while (await reader.ReadAsync(cancellation))
                        pairs.Add((reader.GetString(0), serializer.FromJson<RecordView>(reader, 1),
                            await reader.IsDBNullAsync(2, cancellation) ? null : serializer.FromJson<RecordView>(reader, 2)));
                }
                var differ = pairs.Where(pair => pair.Old is null || Fingerprint(pair.New) != Fingerprint(pair.Old)).Select(pair => pair.Id).ToArray();
                var same = pairs.Select(pair => pair.Id).Except(differ).ToArray();
                await using (var note = new NpgsqlBatch(connection, transaction)
                             {
                                 BatchCommands =
                                 {
                                     SessionBatch.Command($"insert into {Schema}.{Changed} (id) select unnest($1::varchar[]) on conflict do nothing", differ),
                                     SessionBatch.Command($"delete from {Schema}.{Changed} where id = any($1)", same),
                                 },
                             })
                    await note.ExecuteNonQueryAsync(cancellation);
                if (chunk is not null || pairs.Count < PageSize) break;
                after = pairs[^1].Id;
            }
        }
        await using var count = new NpgsqlCommand($"select count(*) from {Schema}.{Changed}", connection, transaction);
        return (long)(await count.ExecuteScalarAsync(cancellation))!;
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
        await using var connection = await database.OpenConnectionAsync(cancellation);
        await using var transaction = await connection.BeginTransactionAsync(cancellation);
        long reissuedAt;
        await using (var take = new NpgsqlCommand($"select {(stamped ? FeedStamps.TakeSql : RowSecurity.TransactionIdSql)}", connection, transaction))
            reissuedAt = (long)(await take.ExecuteScalarAsync(cancellation))!;
        await ReissueAsync(connection, transaction, reissuedAt, cancellation);

        // No event is appended from here until the switch commits; pushes that appended some have ended.
        await using (var fence = new NpgsqlCommand($"lock table {Schema}.mt_events in exclusive mode", connection, transaction))
            await fence.ExecuteNonQueryAsync(cancellation);
        var last = new HashSet<string>(touched);
        for (var page = new Page(-1, [], progress); page.Merged != 0;)
        {
            page = await MergeAsync(connection, transaction, page.Progress, cancellation);
            last.UnionWith(page.Touched);
            progress = page.Progress;
        }
        var reissued = await CompareAsync(connection, transaction, last, cancellation);
        await ReissueAsync(connection, transaction, reissuedAt, cancellation);
        await ReplaceLiveAsync(connection, transaction, cancellation);
        await (progress with { Phase = RebuildPhase.Switched, ChangedRecords = reissued }).SaveAsync(connection, transaction, cancellation);
        await transaction.CommitAsync(cancellation);
        return reissued;
    }

    /// <summary>Marks the new views of the records that differ as reissued at this position (not moving any back).</summary>
    private static async Task ReissueAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, long at, CancellationToken cancellation)
    {
        await using var reissue = new NpgsqlCommand(
            $"""
            update {Schema}.{Table} n
            set position_tx = greatest(n.position_tx, $1), position_index = case when n.position_tx > $1 then n.position_index else 0 end,
                sole_client = null,
                data = n.data || jsonb_build_object('reissued', jsonb_build_object('tx', $1, 'index', 0),
                                                   'positionTx', greatest(n.position_tx, $1),
                                                   'positionIndex', case when n.position_tx > $1 then n.position_index else 0 end)
            from {Schema}.{Changed} c
            where c.id = n.id and (n.data -> 'reissued' ->> 'tx') is distinct from $1::text
            """, connection, transaction) { Parameters = { new NpgsqlParameter { Value = at } } };
        await reissue.ExecuteNonQueryAsync(cancellation);
    }

    /// <summary>Drops the live table and gives the new one its name, and its indexes their names (Marten checks them by name).</summary>
    private static async Task ReplaceLiveAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, CancellationToken cancellation)
    {
        var indexes = new List<(string Table, string Name, string Definition)>();
        await using (var read = new NpgsqlCommand("select tablename, indexname, indexdef from pg_indexes where schemaname = $1 and tablename = any($2)",
                         connection, transaction) { Parameters = { new() { Value = Schema }, new() { Value = new[] { Live, Table } } } })
        await using (var reader = await read.ExecuteReaderAsync(cancellation))
            while (await reader.ReadAsync(cancellation)) indexes.Add((reader.GetString(0), reader.GetString(1), IndexShape().Replace(reader.GetString(2), "INDEX ON")));
        var renames = indexes.Where(index => index.Table == Table)
            .Select(index => (index.Name, Original: indexes.FirstOrDefault(live => live.Table == Live && live.Definition == index.Definition).Name))
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

    [GeneratedRegex(@"INDEX \S+ ON \S+")]
    private static partial Regex IndexShape();

    /// <summary>Events stored after this position in the log (the work left, as far as it is known now).</summary>
    public async Task<long> EventsAfterAsync(long cursor, CancellationToken cancellation)
    {
        await using var count = database.CreateCommand($"select count(*) from {Schema}.mt_events where seq_id > $1");
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

    private async Task<List<RecordView>> ReadViewsAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, string table, string[] keys,
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

    private static NpgsqlBatchCommand BatchCommand(string sql, params object[] parameters)
    {
        var command = new NpgsqlBatchCommand(sql);
        foreach (var parameter in parameters) command.Parameters.Add(new NpgsqlParameter { Value = parameter });
        return command;
    }
}
