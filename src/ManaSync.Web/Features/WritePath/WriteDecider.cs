using System.Text.Json;
using ManaSync.Events;
using ManaSync.Events.Upcasting;
using ManaSync.Projections.Records;
using ManaSync.Web.Features.Sync;
using ManaSync.Web.Infrastructure;
using ManaSync.Web.Infrastructure.Isolation;

namespace ManaSync.Web.Features.WritePath;

/// <summary>What one set of changes came to once decided.</summary>
/// <param name="Events">The changes to append, placed in the scope they are merged into.</param>
/// <param name="Skipped">Changes already stored (retries): not stored or merged again.</param>
/// <param name="Conflicts">Fields of the changes that lost last-write-wins to a write from outside them.</param>
/// <param name="Refusal">Why nothing may be stored, if so.</param>
public sealed record WriteDecision(IReadOnlyList<ChangeRecorded> Events, int Skipped, IReadOnlyList<WireConflict> Conflicts,
    WriteRefusal? Refusal = null)
{
    public static WriteDecision Refused(WriteRefusal refusal) => new([], 0, [], refusal);
}

/// <summary>
/// Decides changes without touching the database: which are retries of stored events (skipped), which may not
/// be stored (refused), where each of the others is merged, and which of their fields lose last-write-wins.
/// </summary>
public static class WriteDecider
{
    /// <param name="changes">The changes, made into events in the order they are stored.</param>
    /// <param name="stored">The events already stored under the changes' eventIds, as far as the writers may see them.</param>
    /// <param name="views">The current views of the records the changes may touch; merged in place.</param>
    /// <param name="writerOf">Who writes a user's changes: their scopes and whether those are known.</param>
    /// <param name="heldHere">With shards, the scopes of the shard written (<see cref="RecordHomes.Place"/>).</param>
    /// <param name="movesTo">With shards, scopes of other shards the write also stores into (<see cref="RecordHomes.Place"/>).</param>
    public static WriteDecision Decide(IReadOnlyList<ChangeRecorded> changes, IReadOnlyDictionary<Guid, ChangeRecorded> stored,
        IDictionary<string, RecordView> views, Func<string, Caller> writerOf, ChangeUpcasting upcasting, bool reportConflicts,
        IReadOnlySet<string>? heldHere = null, IReadOnlySet<string>? movesTo = null)
    {
        var events = new List<ChangeRecorded>(changes.Count);
        var fresh = new Dictionary<Guid, ChangeRecorded>();
        foreach (var change in changes)
        {
            var earlier = stored.GetValueOrDefault(change.EventId) ?? fresh.GetValueOrDefault(change.EventId);
            if (earlier is not null)
            {
                if (earlier.UserId == change.UserId && ChangePayload.Same(upcasting.ToCurrent(earlier), upcasting.ToCurrent(change))) continue;
                return WriteDecision.Refused(WriteRefusal.Clash(change.CommitIndex));
            }
            if (RecordKey.IsShared(change.SpaceId, change.UserId) && writerOf(change.UserId) is { } writer && !writer.IsMemberOf(change.SpaceId!))
                return WriteDecision.Refused(writer.SpacesKnown
                    ? WriteRefusal.NotAMember(change.CommitIndex, change.SpaceId!)
                    : WriteRefusal.MembershipsUnknown(change.CommitIndex));
            fresh[change.EventId] = change;
            events.Add(change);
        }

        for (var i = 0; i < events.Count; i++)
        {
            var writer = writerOf(events[i].UserId);
            var placed = RecordHomes.Place(events[i], views, writer.Scopes, writer.SpacesKnown, upcasting, heldHere, movesTo);
            if (placed.NeedsMemberships) return WriteDecision.Refused(WriteRefusal.MembershipsUnknown(events[i].CommitIndex));
            events[i] = placed.Change;
        }
        var skipped = changes.Count - events.Count;
        if (!reportConflicts) return new WriteDecision(events, skipped, []);

        var eventIds = fresh.Keys.ToHashSet();
        var conflicts = events.Select(upcasting.ToCurrent)
            .SelectMany(merged => PushedFields(merged)
                .Select(pushed => LostTo(views[RecordKey.For(merged)], merged, pushed, eventIds)))
            .OfType<WireConflict>()
            .ToList();
        return new WriteDecision(events, skipped, conflicts);
    }

    private static IEnumerable<(string Name, JsonElement Value, DateTimeOffset Stamp)> PushedFields(ChangeRecorded change)
    {
        if (change is { Op: ChangeOp.Insert, Data: { ValueKind: JsonValueKind.Object } data })
        {
            var stamp = RecordView.InsertStamp(change);
            foreach (var member in data.EnumerateObject()) yield return (member.Name, member.Value, stamp);
        }
        if (change is { Op: ChangeOp.Delete, DeletedAt: { } deletedAt })
            yield return (FieldNames.DeletedAt, Timestamps.ToJson(deletedAt), deletedAt);
        foreach (var (name, field) in change.Fields ?? new Dictionary<string, FieldChange>())
            yield return (name, field.Value, field.UpdatedAt);
    }

    /// <summary>A field lost when a write from outside these changes decides its value (its own, or one to an ancestor key path).</summary>
    private static WireConflict? LostTo(RecordView view, ChangeRecorded change, (string Name, JsonElement Value, DateTimeOffset Stamp) pushed,
        HashSet<Guid> eventIds)
    {
        var winner = LiveState.DecidingWrite(view, pushed.Name)!;
        if (eventIds.Contains(winner.EventId)) return null;
        return new WireConflict(change.Table, change.RecordId, pushed.Name, pushed.Value, Timestamps.Format(pushed.Stamp),
            LiveState.ValueAt(view, pushed.Name) ?? WireJson.Null, Timestamps.Format(winner.Stamp));
    }
}
