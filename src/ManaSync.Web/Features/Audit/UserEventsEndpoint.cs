using System.Text.Json;
using ManaSync.Events;
using ManaSync.Events.Upcasting;
using ManaSync.Web.Features.Backup;
using ManaSync.Web.Infrastructure;
using ManaSync.Web.Infrastructure.Isolation;
using Wolverine.Http;

namespace ManaSync.Web.Features.Audit;

/// <summary>
/// GET /audit/users/{userId}/events?app=&amp;table=&amp;actor=&amp;from=&amp;to=&amp;limit=&amp;cursor=: the user's events (the
/// changes they made), oldest first, a page at a time (PROTOCOL §12), as export lines; <c>format=jsonl</c> streams every
/// event the filter selects as JSON lines, <c>format=mana</c> as a .mana archive. The user themself, or an auditor.
/// </summary>
public static class UserEventsEndpoint
{
    public const int DefaultLimit = 100;
    public const int MaxLimit = 1000;

    [WolverineGet("/audit/users/{userId}/events")]
    public static async Task<IResult> Get(string userId, [NotBody] Caller caller, HttpContext http, CallerSessions sessions, ChangeUpcasting upcasting,
        TimeProvider time)
    {
        var query = http.Request.Query;
        if (!TryFilter(query, out var filter, out var refusal)) return refusal!;
        switch (query["format"].ToString())
        {
            case "mana":
                var createdAt = time.GetUtcNow();
                http.Response.ContentType = "application/zip";
                http.Response.Headers.ContentDisposition = $"attachment; filename=\"{BackupArchive.FileName(caller.UserId, createdAt)}\"";
                await BackupArchive.WriteAsync(http.Response.Body, caller.UserId, createdAt, UserEvents.ReadAsync(sessions, caller, filter, http.RequestAborted),
                    upcasting.CurrentVersion, http.RequestAborted);
                return Results.Empty;
            case "jsonl":
                http.Response.ContentType = "application/x-ndjson";
                await foreach (var change in UserEvents.ReadAsync(sessions, caller, filter, http.RequestAborted))
                {
                    await http.Response.Body.WriteAsync(JsonSerializer.SerializeToUtf8Bytes(BackupLine.From(change), WireJson.Options), http.RequestAborted);
                    await http.Response.Body.WriteAsync("\n"u8.ToArray(), http.RequestAborted);
                }
                return Results.Empty;
            case "" or "json":
                break;
            default:
                return ApiError.BadRequest("format is json, jsonl or mana.");
        }

        if (!PageLimit.TryRead(query["limit"].ToString(), DefaultLimit, MaxLimit, out var limit)) return PageLimit.Refusal(MaxLimit);
        if (!EventCursor.TryDecode(query["cursor"], out var positions)) return ApiError.BadRequest("cursor is not one this server gave.");

        // Each shard's next events after its position; the page is the oldest of them all, and each shard's position
        // moves past the ones taken from it.
        var candidates = new List<(string Shard, long Position, ChangeRecorded Change)>();
        var more = false;
        foreach (var shard in sessions.AllShards)
        {
            await using var scope = await sessions.ReadAsync(caller, http.RequestAborted, shard);
            var page = await UserEvents.ReadPageAsync(scope, caller.UserId, filter, positions.GetValueOrDefault(shard), limit, http.RequestAborted);
            more |= page.Count == limit;
            candidates.AddRange(page.Select(read => (shard, read.Position, read.Change)));
        }
        var taken = candidates.OrderBy(candidate => UserEvents.Order(candidate.Change)).Take(limit).ToList();
        more |= taken.Count < candidates.Count;
        foreach (var (shard, position, _) in taken) positions[shard] = Math.Max(positions.GetValueOrDefault(shard), position);
        return Results.Json(new
        {
            userId = caller.UserId,
            // An event that moved a record between shards is stored in both: it is listed once.
            events = taken.DistinctBy(candidate => candidate.Change.EventId).Select(candidate => BackupLine.From(candidate.Change)),
            nextCursor = more ? EventCursor.Encode(positions) : null,
        }, WireJson.Options);
    }

    private static bool TryFilter(IQueryCollection query, out EventFilter filter, out IResult? refusal)
    {
        (filter, refusal) = (EventFilter.All, null);
        if (!QueryTime.TryRead(query, "from", out var from)) refusal = QueryTime.Refusal("from");
        else if (!QueryTime.TryRead(query, "to", out var to)) refusal = QueryTime.Refusal("to");
        else filter = new EventFilter(Text(query["app"]), Text(query["table"]), Text(query["actor"]), from, to);
        return refusal is null;
    }

    private static string? Text(Microsoft.Extensions.Primitives.StringValues value) => value.ToString() is { Length: > 0 } text ? text : null;
}
