using System.Text.Json;
using ManaSync.Events;
using ManaSync.Events.Upcasting;
using ManaSync.Projections.Records;
using ManaSync.Web.Infrastructure;
using ManaSync.Web.Infrastructure.Isolation;
using Wolverine.Http;

namespace ManaSync.Web.Features.Audit;

public sealed record FieldChangeAudit(JsonElement? Before, JsonElement? After);

public sealed record HistoryEntry(
    string EventId,
    string Op,
    int SchemaVersion,
    JsonElement? Actor,
    string? ClientId,
    string UserId,
    string CreatedAt,
    string? SpaceId,
    IReadOnlyDictionary<string, FieldChangeAudit> Fields);

/// <summary>
/// GET /audit/{appId}/{table}/{id}/history: every event that touched the record, oldest first, with
/// what each did to every field (the merged value before and after it; a write that lost changes nothing).
/// </summary>
public static class HistoryEndpoint
{
    [WolverineGet("/audit/{appId}/{table}/{id}/history")]
    public static async Task<IResult> Get(string appId, string table, string id, [NotBody] Caller caller, HttpContext http,
        CallerSessions sessions, ChangeUpcasting upcasting)
    {
        var events = await RecordEvents.ReadAsync(sessions, caller, appId, table, id, upcasting, http.RequestAborted);
        if (events.Count == 0) return new ApiError("not_found", "No such record.").ToResult(StatusCodes.Status404NotFound);
        return Results.Json(new { appId, table, id, events = Replay(events) }, WireJson.Options);
    }

    /// <summary>Merges the events one by one, noting each field's live value before and after every event.</summary>
    public static List<HistoryEntry> Replay(IEnumerable<ChangeRecorded> events)
    {
        var views = new Dictionary<string, RecordView>();
        var history = new List<HistoryEntry>();
        foreach (var change in events)
        {
            // A change that moved the record takes it from the view it left.
            var beforeKey = change.MovedFrom is { } left ? RecordKey.For(left, change.AppId, change.Table, change.RecordId) : RecordKey.For(change);
            var before = views.TryGetValue(beforeKey, out var was) ? RecordEvents.LiveValues(was) : [];
            RecordViews.Apply(views, change);
            var after = RecordEvents.LiveValues(views[RecordKey.For(change)]);
            var fields = before.Keys.Union(after.Keys)
                .Where(name => !before.TryGetValue(name, out var old) || !after.TryGetValue(name, out var now) ||
                               old.GetRawText() != now.GetRawText())
                .ToDictionary(name => name, name => new FieldChangeAudit(
                    before.TryGetValue(name, out var old) ? old : null, after.TryGetValue(name, out var now) ? now : null));
            history.Add(new HistoryEntry(change.EventId.ToString(), change.Op.ToString().ToLowerInvariant(), change.SchemaVersion,
                change.Actor, change.ClientId, change.UserId, Timestamps.Format(change.ReceivedAt), change.SpaceId, fields));
        }
        return history;
    }
}
