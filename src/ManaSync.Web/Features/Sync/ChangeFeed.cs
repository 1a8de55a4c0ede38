using ManaSync.Projections.Records;
using ManaSync.Web.Infrastructure.Isolation;
using Marten;
using Npgsql;

namespace ManaSync.Web.Features.Sync;

/// <param name="Tables">The tables to read; null for every table of the app.</param>
/// <param name="FromScratch">The reader holds nothing of what it reads yet, so it needs no deletes: true only for
/// a pull of one table from its very beginning. A push or stream reads from the oldest cursor of several tables,
/// and the others may hold records that were deleted since.</param>
public sealed record FeedRequest(
    IReadOnlyList<string> Scopes,
    string AppId,
    IReadOnlyList<string>? Tables,
    Since Since,
    string? ExcludeClientId,
    int Limit,
    bool FromScratch = false);

/// <param name="After">Just after this change: resuming there neither repeats nor skips it.</param>
public sealed record FeedEntry(WireChange Change, Position After);

/// <param name="Next">Where the next read resumes.</param>
/// <param name="Times">Writes the cursor tokens of this page's positions.</param>
/// <param name="HeldBack">Committed changes lie beyond <paramref name="Next"/>, held back by an older transaction
/// still running when the read stopped waiting for it: reading again soon will find them.</param>
public sealed record FeedPage(IReadOnlyList<FeedEntry> Entries, Position Next, CursorTimes Times, bool HasMore, bool HeldBack)
{
    public IReadOnlyList<WireChange> Changes => Entries.Select(entry => entry.Change).ToList();

    public string NextToken => Times.Token(Next);
}

/// <summary>
/// Reads the record view in commit order from a cursor, one page at a time.
/// </summary>
/// <remarks>
/// A write's position is the id of the transaction that made it. Transaction ids are handed out at
/// the start of a transaction, not at commit, so a later id can commit first. The feed therefore
/// reads only below the commit horizon: the oldest transaction id still running anywhere
/// (<c>pg_snapshot_xmin</c>). Everything below it has committed or rolled back, and everything that
/// commits later has an id at or above it, so no page skips a change that commits late.
/// </remarks>
public static class ChangeFeed
{
    public const int DefaultLimit = 1000;
    public const int MaxLimit = 5000;

    public static async Task<FeedPage> ReadAsync(CallerSession<IQuerySession> scope, FeedRequest request, CancellationToken cancellation)
    {
        if (request.Since.Legacy is { } legacy)
        {
            await using var start = await scope.ExecuteAsync([FeedClock.LegacyStartCommand(legacy)], cancellation);
            await start.ReadAsync(cancellation);
            request = request with { Since = request.Since with { From = new Position(start.GetInt64(0), 0), Legacy = null } };
        }

        // Usually one round trip: the commit horizon, the newest committed change and the feed clock, and the page
        // below that horizon, all from one snapshot.
        var ranges = new FeedRanges(request);
        var (head, rows) = await ReadHeadAndPageAsync(scope, ranges, cancellation);
        var (horizon, clock, heldBack) = (head.Horizon, head.Clock, head.Horizon <= head.Newest);
        if (heldBack) (horizon, clock, heldBack) = await SettleAsync(scope, head, cancellation);
        var readAgain = horizon != head.Horizon;
        // A legacy start beyond the horizon would pass over a transaction still storing below it.
        var from = request.Since.From.Tx > horizon ? new Position(horizon, 0) : request.Since.From;
        if (from != request.Since.From)
        {
            request = request with { Since = request.Since with { From = from } };
            ranges = new FeedRanges(request);
            readAgain = true;
        }
        if (readAgain) rows = await ReadPageAsync(scope, ranges, horizon, cancellation);

        var scopes = request.Scopes.ToHashSet();
        var hasMore = rows.Count > request.Limit;
        var page = hasMore ? rows.Take(request.Limit).ToList() : rows;
        // A page read again (after waiting for the horizon) may hold rows newer than the head's newest.
        var newestSeen = Math.Max(head.Newest, page.Count > 0 ? page[^1].PositionTx : 0);
        var next = hasMore ? After(page[^1]) : Position.Max(from, new Position(ResumeAt(horizon, newestSeen), 0));
        var times = await FeedClock.TimesAsync(scope, clock, page.Select(After).Append(next), cancellation);
        var entries = page
            .SelectMany(view => ChangeEmitter.Emit(view, request.Since, request.ExcludeClientId, scopes, request.FromScratch)
                .Select(change => new FeedEntry(change, After(view))))
            .ToList();
        return new FeedPage(entries, next, times, hasMore, heldBack);
    }

    /// <summary>
    /// The rows a request reads, as one ordered index range per scope (and table). PostgreSQL 15 reads
    /// an index in order only under plain equality: given "scope = any(…)" it fetched and sorted every
    /// row from the cursor on for each page, which made an initial sync quadratic (docs/benchmarks.md).
    /// Parameters are numbered, so the statements below use the ranges twice with one set of values.
    /// </summary>
    internal sealed class FeedRanges
    {
        private readonly List<object> _parameters = [];

        public FeedRanges(FeedRequest request)
        {
            var from = request.Since.From;
            Sources = request.Tables is null
                ? $"unnest({Parameter(request.Scopes.ToArray())}::text[]) as ranges(scope)"
                : $"unnest({Parameter(request.Scopes.ToArray())}::text[]) as ranges(scope) " +
                  $"cross join unnest({Parameter(request.Tables.ToArray())}::text[]) as tables(table_name)";
            Filter = $"v.scope = ranges.scope and v.app_id = {Parameter(request.AppId)} " +
                     $"and (v.position_tx, v.position_index) >= ({Parameter(from.Tx)}, {Parameter(from.Index)})" +
                     (request.Tables is null ? "" : " and v.table_name = tables.table_name");
            var needs = ReaderNeeds(request.ExcludeClientId);
            // Read one row more than asked, to tell a full last page from a cut one.
            var limit = Parameter(request.Limit + 1);
            // The newest row of each range, read backwards from the end of its index: max() checked every row's
            // row security from the cursor on, and a read from an old cursor paid for the whole rest of the feed.
            Newest = $"select coalesce(max(range.newest), 0) from {Sources} cross join lateral (" +
                     $"select v.position_tx as newest from manasync.mt_doc_recordview as v where {Filter} " +
                     "order by v.position_tx desc, v.position_index desc limit 1) as range";
            Page = horizon =>
                $"select page.data, page.position_tx, page.position_index from {Sources} cross join lateral (" +
                $"select {needs}, v.position_tx, v.position_index " +
                $"from manasync.mt_doc_recordview as v where {Filter} and v.position_tx < {horizon} " +
                $"order by v.position_tx, v.position_index limit {limit}) as page " +
                $"order by page.position_tx, page.position_index limit {limit}";
        }

        private string Sources { get; }
        private string Filter { get; }

        /// <summary>The newest committed change in the ranges (0 if none): a statement of one row and column.</summary>
        public string Newest { get; }

        /// <summary>The page's statement, below the given horizon (an expression).</summary>
        public Func<string, string> Page { get; }

        public NpgsqlBatchCommand Command(string sql, params object[] more)
        {
            var command = new NpgsqlBatchCommand(sql);
            foreach (var value in _parameters.Concat(more)) command.Parameters.Add(new NpgsqlParameter { Value = value });
            return command;
        }

        public string NextParameter => "$" + (_parameters.Count + 1);

        /// <summary>
        /// A page's row as the reader needs it. A record the reader wrote all of (its <see cref="RecordView.SoleClient"/>)
        /// is sent as nothing (<see cref="ChangeEmitter"/>), so PostgreSQL sends an empty view in its place: it keeps its
        /// place in the page, so a page still looks at no more rows than it holds, but is neither shipped nor read whole.
        /// A device pushing from an old cursor would otherwise load a page of its own records on every push.
        /// </summary>
        private string ReaderNeeds(string? excludedClient) => excludedClient is null
            ? "v.data"
            : $"case when v.sole_client is distinct from {Parameter(excludedClient)} then v.data else jsonb_build_object(" +
              "'id', v.id, 'scope', v.scope, 'appId', v.app_id, 'tableName', v.table_name, 'recordId', '', " +
              "'positionTx', v.position_tx, 'positionIndex', v.position_index, 'fields', '{}'::jsonb) end as data";

        private string Parameter(object value)
        {
            _parameters.Add(value);
            return "$" + _parameters.Count;
        }
    }

    /// <summary>What a read starts from: the commit horizon, the newest committed change in its ranges, the feed clock.</summary>
    private sealed record Head(long Newest, long Horizon, FeedClock.Latest Clock);

    /// <summary>The head and, below its horizon, the page, in one statement (one snapshot) and one round trip.</summary>
    private static async Task<(Head, List<RecordView>)> ReadHeadAndPageAsync(CallerSession<IQuerySession> scope, FeedRanges ranges,
        CancellationToken cancellation)
    {
        var sql =
            "select head.newest, head.horizon, head.clock, page.data from (select " +
            $"({ranges.Newest}) as newest, {Horizon} as horizon, ({FeedClock.LatestSql}) as clock) as head " +
            $"left join lateral ({ranges.Page("head.horizon")}) as page on true " +
            "order by page.position_tx, page.position_index";
        await using var reader = await scope.ExecuteAsync([ranges.Command(sql)], cancellation);
        var serializer = scope.Serializer;
        Head? head = null;
        var rows = new List<RecordView>();
        while (await reader.ReadAsync(cancellation))
        {
            head ??= new Head(reader.GetInt64(0), reader.GetInt64(1), serializer.FromJson<FeedClock.Latest>(reader, 2));
            if (!await reader.IsDBNullAsync(3, cancellation)) rows.Add(serializer.FromJson<RecordView>(reader, 3));
        }
        return (head!, rows);
    }

    internal static async Task<List<RecordView>> ReadPageAsync(CallerSession<IQuerySession> scope, FeedRanges ranges, long horizon,
        CancellationToken cancellation)
    {
        await using var reader = await scope.ExecuteAsync([ranges.Command(ranges.Page(ranges.NextParameter), horizon)], cancellation);
        return await SessionBatch.ReadDocumentsAsync<RecordView>(reader, scope.Serializer, cancellation);
    }

    /// <summary>
    /// Where a reader that has read everything resumes: the commit horizon, but never past the newest change it
    /// could see, plus one. Nothing lies between (every id below the horizon has ended), so this skips and repeats
    /// nothing; and it keeps cursors valid across a failover or crash recovery: PostgreSQL hands out transaction
    /// ids again from just past the last one its WAL records, and ids of transactions that rolled back without
    /// their abort reaching the standby (or the disk) would otherwise sit below a horizon already handed out.
    /// A change a reader saw committed was in that WAL (a commit becomes visible only after the synchronous
    /// standby has it), so every transaction on the new primary gets an id above it (docs/architecture.md).
    /// </summary>
    internal static long ResumeAt(long horizon, long newestSeen) => Math.Min(horizon, newestSeen + 1);

    internal static Position After(RecordView view) => view.Position with { Index = view.PositionIndex + 1 };

    /// <summary>The commit horizon: the oldest transaction id still running anywhere.</summary>
    private const string Horizon = "pg_snapshot_xmin(pg_current_snapshot())::text::bigint";

    /// <summary>How long a read waits for writes that started before a committed change to finish.</summary>
    public static readonly TimeSpan MaxSettleWait = TimeSpan.FromSeconds(2);

    /// <summary>
    /// The commit horizon, after waiting briefly when committed changes lie beyond it: a transaction
    /// that started earlier and is still running holds those changes back, and a client that pulls
    /// right after another device pushed should not miss them for that. The wait is bounded; the page
    /// then says it was held back, and what a long transaction holds back comes with a later read.
    /// Transactions that write nothing the feed reads are not waited for (<see cref="OffFeedWrites"/>: looking
    /// for them costs a look at the lock table, so only here). The feed clock's latest mark comes from the
    /// same statement, so every mark below the horizon is in it.
    /// </summary>
    private static async Task<(long Horizon, FeedClock.Latest Clock, bool HeldBack)> SettleAsync(CallerSession<IQuerySession> scope,
        Head head, CancellationToken cancellation)
    {
        var (horizon, clock) = (head.Horizon, head.Clock);
        var deadline = DateTime.UtcNow + MaxSettleWait;
        while (horizon <= head.Newest && DateTime.UtcNow < deadline)
        {
            await Task.Delay(TimeSpan.FromMilliseconds(5), cancellation);
            await using var reader = await scope.ExecuteAsync([new NpgsqlBatchCommand($"select {OffFeedWrites.HorizonSql}, ({FeedClock.LatestSql})")], cancellation);
            await reader.ReadAsync(cancellation);
            (horizon, clock) = (reader.GetInt64(0), scope.Serializer.FromJson<FeedClock.Latest>(reader, 1));
        }
        return (horizon, clock, horizon <= head.Newest);
    }
}
