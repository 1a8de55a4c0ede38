using ManaSync.Events;
using ManaSync.Events.Upcasting;
using ManaSync.Projections.Records;
using ManaSync.Web.Features.Sync;
using ManaSync.Web.Infrastructure;
using ManaSync.Web.Infrastructure.Isolation;
using Marten;
using Wolverine.Http;

namespace ManaSync.Web.Features.Audit;

/// <summary>
/// GET /audit/users/{userId}/records?app=&amp;table=&amp;q=&amp;after=&amp;limit=[&amp;asOf=]: a table's records the user sees, by
/// id, a page at a time; <c>q</c> keeps those whose id or field values contain it (case-insensitive). With <c>asOf</c>, the
/// table as the server held it then (every event received by that time, merged by the usual rules), and <c>q</c> looks
/// at ids only. The user themself, or an auditor.
/// </summary>
public static class TableRecordsEndpoint
{
    public const int DefaultLimit = 50;
    public const int MaxLimit = 500;

    [WolverineGet("/audit/users/{userId}/records")]
    public static async Task<IResult> Get(string userId, [NotBody] Caller caller, HttpContext http, CallerSessions sessions, ChangeUpcasting upcasting)
    {
        var query = http.Request.Query;
        if (query["app"].ToString() is not { Length: > 0 } appId || query["table"].ToString() is not { Length: > 0 } table)
            return ApiError.BadRequest("app and table are required.");
        if (!PageLimit.TryRead(query["limit"].ToString(), DefaultLimit, MaxLimit, out var limit)) return PageLimit.Refusal(MaxLimit);
        if (!QueryTime.TryRead(query, "asOf", out var asOf)) return QueryTime.Refusal("asOf");
        var search = query["q"].ToString() is { Length: > 0 } q ? q : null;
        var after = query["after"].ToString();

        var (views, next) = asOf is null
            ? await LiveViewsAsync(sessions, caller, appId, table, search, after, limit, http.RequestAborted)
            : await ViewsAsOfAsync(sessions, caller, appId, table, search, after, limit, asOf.Value, upcasting, http.RequestAborted);
        return Results.Json(new
        {
            userId = caller.UserId, appId, table, asOf = asOf is { } at ? Timestamps.Format(at) : null,
            records = views.OrderBy(view => view.RecordId, StringComparer.Ordinal).Select(AuditRecord.Of),
            nextCursor = next,
        }, WireJson.Options);
    }

    /// <summary>The next views by id as they are now, from each shard holding the caller's scopes; and the id to go on after, if more may follow.</summary>
    private static async Task<(List<RecordView> Views, string? Next)> LiveViewsAsync(CallerSessions sessions, Caller caller, string appId, string table, string? search,
        string after, int limit, CancellationToken cancellation)
    {
        var views = new List<RecordView>();
        foreach (var shard in await sessions.ShardsOfAsync(caller, cancellation))
        {
            await using var scope = await sessions.ReadAsync(caller, cancellation, shard);
            await using var reader = await scope.ExecuteAsync([SessionBatch.CommandWith(
                $"""
                select data from {MartenSetup.Schema}.{RecordViewUpsert.Table}
                where scope = any($1) and app_id = $2 and table_name = $3 and data ->> 'movedTo' is null and (data ->> 'recordId') collate "C" > $4
                  and ($5::text is null or strpos(lower(data ->> 'recordId'), lower($5)) > 0 or strpos(lower((data -> 'fields')::text), lower($5)) > 0)
                order by data ->> 'recordId' collate "C" limit {limit}
                """, caller.Scopes.ToArray(), appId, table, after, SessionBatch.Text(search))], cancellation);
            views.AddRange(await SessionBatch.ReadDocumentsAsync<RecordView>(reader, scope.Serializer, cancellation));
        }
        var page = views.OrderBy(view => view.RecordId, StringComparer.Ordinal).Take(limit).ToList();
        return (page, page.Count == limit ? page[^1].RecordId : null);
    }

    /// <summary>The next records of the table by id among those with an event by then, each merged from its events received by then;
    /// and the id to go on after, if more may follow (a page can hold fewer records than ids: one may have left the caller's scopes).</summary>
    private static async Task<(List<RecordView> Views, string? Next)> ViewsAsOfAsync(CallerSessions sessions, Caller caller, string appId, string table, string? search,
        string after, int limit, DateTimeOffset asOf, ChangeUpcasting upcasting, CancellationToken cancellation)
    {
        var ids = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var shard in await sessions.ShardsOfAsync(caller, cancellation))
        {
            await using var scope = await sessions.ReadAsync(caller, cancellation, shard);
            await using var reader = await scope.ExecuteAsync([SessionBatch.CommandWith(
                $"""
                select distinct r.record from {MartenSetup.Schema}.{RecordIndex.Table} r
                join {MartenSetup.Schema}.mt_events e on e.seq_id = r.seq_id
                where r.record > $1 and r.record < $2 and (e.data ->> 'receivedAt')::timestamptz <= $3
                  and ($4::text is null or strpos(lower(e.data ->> 'recordId'), lower($4)) > 0)
                order by r.record limit {limit}
                """, RecordIndex.Of(appId, table, after), RecordIndex.AfterTable(appId, table), SessionBatch.Time(asOf),
                SessionBatch.Text(search))], cancellation);
            var prefix = RecordIndex.TablePrefix(appId, table).Length;
            while (await reader.ReadAsync(cancellation)) ids.Add(reader.GetString(0)[prefix..]);
        }
        var page = ids.Take(limit).ToArray();
        var views = new Dictionary<string, RecordView>();
        foreach (var change in await RecordEvents.ReadAsync(sessions, caller, appId, table, page, asOf, upcasting, cancellation))
            RecordViews.Apply(views, change);
        var scopes = caller.Scopes.ToHashSet();
        return (views.Values.Where(view => view.MovedTo is null && scopes.Contains(view.Scope)).ToList(), page.Length == limit ? page[^1] : null);
    }
}
