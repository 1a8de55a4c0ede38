using ManaSync.Projections.Records;
using Marten;

namespace ManaSync.Web.Features.Sync;

/// <param name="Tables">The tables to read; null for every table of the app.</param>
public sealed record FeedRequest(
    IReadOnlyList<string> Scopes,
    string AppId,
    IReadOnlyList<string>? Tables,
    Since Since,
    string? ExcludeClientId,
    int Limit);

/// <param name="After">The cursor just after this change: resuming there neither repeats nor skips it.</param>
public sealed record FeedEntry(WireChange Change, Position After);

public sealed record FeedPage(IReadOnlyList<FeedEntry> Entries, Position Next, bool HasMore)
{
    public IReadOnlyList<WireChange> Changes => Entries.Select(entry => entry.Change).ToList();
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

    public static async Task<FeedPage> ReadAsync(IQuerySession session, FeedRequest request, CancellationToken cancellation)
    {
        var from = request.Since.From;
        var filters = new List<string> { "scope = any(?)", "app_id = ?", "(position_tx, position_index) >= (?, ?)" };
        var parameters = new List<object> { request.Scopes.ToArray(), request.AppId, from.Tx, from.Index };
        if (request.Tables is not null)
        {
            filters.Add("table_name = any(?)");
            parameters.Add(request.Tables.ToArray());
        }
        if (request.Since.ModifiedSince is { } modifiedSince)
        {
            filters.Add("mt_last_modified >= ?");
            parameters.Add(modifiedSince);
        }
        var where = string.Join(" and ", filters);
        var horizon = await SettledHorizonAsync(session, where, parameters, cancellation);

        // Read one row more than asked, to tell a full last page from a cut one.
        parameters.Add(horizon);
        parameters.Add(request.Limit + 1);
        var rows = await session.QueryAsync<RecordView>(
            $"select data from manasync.mt_doc_recordview where {where} and position_tx < ? " +
            "order by position_tx, position_index limit ?",
            cancellation, parameters.ToArray());

        var hasMore = rows.Count > request.Limit;
        var page = hasMore ? rows.Take(request.Limit).ToList() : rows.ToList();
        var next = hasMore ? After(page[^1]) : Position.Max(from, new Position(horizon, 0));
        var entries = page
            .Select(view => ChangeEmitter.Emit(view, request.Since, request.ExcludeClientId) is { } change
                ? new FeedEntry(change, After(view))
                : null)
            .OfType<FeedEntry>()
            .ToList();
        return new FeedPage(entries, next, hasMore);
    }

    private static Position After(RecordView view) => view.Position with { Index = view.PositionIndex + 1 };

    /// <summary>How long a read waits for writes that started before a committed change to finish.</summary>
    public static readonly TimeSpan MaxSettleWait = TimeSpan.FromSeconds(2);

    /// <summary>
    /// The commit horizon, after waiting briefly when committed changes lie beyond it: a transaction
    /// that started earlier and is still running holds those changes back, and a client that pulls
    /// right after another device pushed should not miss them for that. The wait is bounded; what a
    /// long transaction holds back comes with the next pull.
    /// </summary>
    private static async Task<long> SettledHorizonAsync(IQuerySession session, string where, List<object> parameters,
        CancellationToken cancellation)
    {
        var newest = (await session.QueryAsync<long>(
            $"select coalesce(max(position_tx), 0) from manasync.mt_doc_recordview where {where}",
            cancellation, parameters.ToArray()))[0];
        var deadline = DateTime.UtcNow + MaxSettleWait;
        while (true)
        {
            var horizon = (await session.QueryAsync<long>(
                "select pg_snapshot_xmin(pg_current_snapshot())::text::bigint", cancellation))[0];
            if (horizon > newest || DateTime.UtcNow >= deadline) return horizon;
            await Task.Delay(TimeSpan.FromMilliseconds(5), cancellation);
        }
    }
}
