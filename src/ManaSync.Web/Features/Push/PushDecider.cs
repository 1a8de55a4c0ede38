using ManaSync.Events;
using ManaSync.Events.Upcasting;
using ManaSync.Projections.Records;
using ManaSync.Web.Features.Sync;

namespace ManaSync.Web.Features.Push;

/// <summary>What the server knows when it decides a push.</summary>
/// <param name="CommitTx">The id of the transaction the events are stored in: their cursor position.</param>
/// <param name="Upcasting">Merges read changes in the newest schema's shape, as the projection does.</param>
/// <param name="Scopes">The scopes the writer can see (their own and their spaces'): where their records may live.</param>
/// <param name="SpacesKnown">Whether the writer's spaces could be determined.</param>
public sealed record PushContext(string UserId, string AppId, string? ClientId, DateTimeOffset Now, TimeSpan MaxClockSkew, long CommitTx,
    ChangeUpcasting Upcasting, IReadOnlyList<string> Scopes, bool SpacesKnown);

/// <summary>An event already stored under a client-supplied eventId.</summary>
public sealed record StoredEvent(Guid EventId, string UserId, string PayloadHash);

/// <param name="Clash">An eventId already stored with another payload: refused (409).</param>
/// <param name="Unplaced">A change that cannot be placed while the writer's spaces are unknown: retry later (503).</param>
public sealed record PushOutcome(IReadOnlyList<ChangeRecorded> Events, IReadOnlyList<WireConflict> Conflicts, PushFault? Clash,
    PushFault? Unplaced = null)
{
    public static PushOutcome Clashed(PushFault clash) => new([], [], clash);
}

/// <summary>
/// Decides a push without touching the database: which changes become events (retries of stored
/// events do not), and which pushed fields lose last-write-wins against what the server holds.
/// </summary>
public static class PushDecider
{
    /// <param name="views">The current views of the records the batch touches; merged in place.</param>
    public static PushOutcome Decide(PushBatch batch, PushContext context,
        IReadOnlyDictionary<Guid, StoredEvent> stored, IDictionary<string, RecordView> views)
    {
        var events = new List<ChangeRecorded>(batch.Changes.Count);
        foreach (var change in batch.Changes)
        {
            if (change.EventId is { } eventId && stored.TryGetValue(eventId, out var existing))
            {
                if (existing.UserId == context.UserId && existing.PayloadHash == change.PayloadHash) continue;
                return PushOutcome.Clashed(new PushFault(
                    $"changes[{change.Index}]: eventId {eventId} is already stored with a different payload.", change.Index));
            }
            events.Add(ToEvent(change, context));
        }

        for (var i = 0; i < events.Count; i++)
        {
            var placed = RecordHomes.Place(events[i], views, context.Scopes, context.SpacesKnown, context.Upcasting);
            if (placed.NeedsMemberships)
                return new PushOutcome([], [], null, new PushFault(
                    $"changes[{events[i].BatchIndex}]: where this record lives cannot be checked right now; retry shortly.", events[i].BatchIndex));
            events[i] = placed.Change;
        }
        var merged = events.Select(context.Upcasting.ToCurrent).ToList();

        var batchEventIds = events.Select(e => e.EventId).ToHashSet();
        var conflicts = merged
            .SelectMany(recorded => PushedFields(recorded)
                .Select(pushed => LostTo(views[RecordKey.For(recorded)], recorded, pushed, batchEventIds)))
            .OfType<WireConflict>()
            .ToList();
        return new PushOutcome(events, conflicts, null);
    }

    private static ChangeRecorded ToEvent(PushedChange change, PushContext context) => new()
    {
        EventId = change.EventId ?? Guid.CreateVersion7(context.Now),
        SchemaVersion = Math.Max(change.SchemaVersion, 1),
        UserId = context.UserId,
        AppId = context.AppId,
        Table = change.Table,
        RecordId = change.RecordId,
        Op = change.Op,
        Fields = change.Fields,
        Data = change.Data,
        DeletedAt = change.DeletedAt,
        SpaceId = change.SpaceId,
        Actor = change.Actor,
        ClientId = context.ClientId,
        ReceivedAt = context.Now,
        FutureLimit = context.Now + context.MaxClockSkew,
        CommitTx = context.CommitTx,
        CommitIndex = change.Index,
        BatchIndex = change.Index,
        PayloadHash = change.PayloadHash,
    };

    private static IEnumerable<(string Name, System.Text.Json.JsonElement Value, DateTimeOffset Stamp)> PushedFields(ChangeRecorded change)
    {
        if (change is { Op: ChangeOp.Insert, Data: { ValueKind: System.Text.Json.JsonValueKind.Object } data })
        {
            var stamp = RecordView.InsertStamp(change);
            foreach (var member in data.EnumerateObject()) yield return (member.Name, member.Value, stamp);
        }
        if (change is { Op: ChangeOp.Delete, DeletedAt: { } deletedAt })
            yield return (FieldNames.DeletedAt, Timestamps.ToJson(deletedAt), deletedAt);
        foreach (var (name, field) in change.Fields ?? new Dictionary<string, FieldChange>())
            yield return (name, field.Value, field.UpdatedAt);
    }

    /// <summary>A pushed field lost when a write from outside this batch decides its value (its own, or one to an ancestor key path).</summary>
    private static WireConflict? LostTo(RecordView view, ChangeRecorded change,
        (string Name, System.Text.Json.JsonElement Value, DateTimeOffset Stamp) pushed, HashSet<Guid> batchEventIds)
    {
        var winner = LiveState.DecidingWrite(view, pushed.Name)!;
        if (batchEventIds.Contains(winner.EventId)) return null;
        return new WireConflict(change.Table, change.RecordId, pushed.Name, pushed.Value, Timestamps.Format(pushed.Stamp),
            LiveState.ValueAt(view, pushed.Name) ?? Infrastructure.WireJson.Null, Timestamps.Format(winner.Stamp));
    }
}
