using System.Text.Json;
using ManaSync.Events;

namespace ManaSync.Projections.Records;

/// <summary>
/// Who wrote a winning value, and the keys that order it against competing writes.
/// </summary>
/// <param name="Stamp">The effective timestamp (client time, clamped when too far in the future).</param>
public sealed record Write(
    DateTimeOffset Stamp,
    DateTimeOffset ReceivedAt,
    int BatchIndex,
    Guid EventId,
    string? ClientId,
    string UserId,
    Position Position,
    int SchemaVersion,
    JsonElement? Actor)
{
    /// <summary>
    /// Last-write-wins order: the later stamp wins, compared as instants; on equal stamps the later
    /// server arrival wins (as clients let an incoming value win ties), then the event id, so any
    /// order of the same writes picks the same winner.
    /// </summary>
    public bool Beats(Write other)
    {
        var byStamp = Stamp.UtcTicks.CompareTo(other.Stamp.UtcTicks);
        if (byStamp != 0) return byStamp > 0;
        var byArrival = ReceivedAt.UtcTicks.CompareTo(other.ReceivedAt.UtcTicks);
        if (byArrival != 0) return byArrival > 0;
        var byBatch = BatchIndex.CompareTo(other.BatchIndex);
        if (byBatch != 0) return byBatch > 0;
        return EventId.CompareTo(other.EventId) > 0;
    }

    public static Write Of(ChangeRecorded change, DateTimeOffset clientStamp) => new(
        Effective(clientStamp, change),
        change.ReceivedAt,
        change.BatchIndex,
        change.EventId,
        change.ClientId,
        change.UserId,
        new Position(change.CommitTx, change.CommitIndex),
        change.SchemaVersion,
        change.Actor);

    /// <summary>The stamp a client's timestamp merges with: a client clock far in the future would win every later write, so it counts as the receive time.</summary>
    public static DateTimeOffset Effective(DateTimeOffset stamp, ChangeRecorded change) =>
        stamp > change.FutureLimit ? change.ReceivedAt : stamp;
}
