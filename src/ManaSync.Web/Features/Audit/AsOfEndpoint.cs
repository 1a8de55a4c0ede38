using ManaSync.Events;
using ManaSync.Events.Upcasting;
using ManaSync.Projections.Records;
using ManaSync.Web.Features.Sync;
using ManaSync.Web.Infrastructure;
using ManaSync.Web.Infrastructure.Isolation;
using Wolverine.Http;

namespace ManaSync.Web.Features.Audit;

/// <summary>
/// GET /audit/{appId}/{table}/{id}?asOf=&lt;time&gt;: the record as the server held it at that moment —
/// every event it had received by then, merged by the usual rules.
/// </summary>
public static class AsOfEndpoint
{
    [WolverineGet("/audit/{appId}/{table}/{id}")]
    public static async Task<IResult> Get(string appId, string table, string id, [NotBody] Caller caller, HttpContext http,
        CallerSessions sessions, ChangeUpcasting upcasting)
    {
        if (!QueryTime.TryRead(http.Request.Query, "asOf", out var time) || time is not { } asOf) return QueryTime.Refusal("asOf");
        var events = (await RecordEvents.ReadAsync(sessions, caller, appId, table, id, upcasting, http.RequestAborted))
            .Where(change => change.ReceivedAt <= asOf)
            .ToList();
        if (events.Count == 0) return new ApiError("not_found", "No such record at that time.").ToResult(StatusCodes.Status404NotFound);

        // Normally one record: where it lived then (a view it had moved out of only says where it went).
        var views = new Dictionary<string, RecordView>();
        foreach (var change in events) RecordViews.Apply(views, change);
        var records = views.Values.Where(view => view.MovedTo is null).Select(view => new
        {
            deleted = !view.IsLive,
            record = ChangeEmitter.Emit(view, Since.Beginning, excludeClientId: null, caller.Scopes, fromScratch: true).SingleOrDefault(),
        }).ToList();
        return Results.Json(new { asOf = Timestamps.Format(asOf), records }, WireJson.Options);
    }
}
