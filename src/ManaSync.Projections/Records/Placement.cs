using ManaSync.Events;

namespace ManaSync.Projections.Records;

/// <summary>
/// Every change says which space its record lives in (its spaceId). A record lives where the latest
/// such statement put it, by the same last-write-wins order as its fields: a later one naming another
/// scope moves the record there, an older one does not.
/// </summary>
public static class Placement
{
    /// <summary>The write with which a change places its record: stamped like the change's own writes.</summary>
    /// <returns>null for an update without fields, which says nothing new about the record.</returns>
    public static Write? Of(ChangeRecorded change) => change switch
    {
        { Op: ChangeOp.Insert } => Write.Of(change, RecordView.InsertStamp(change)),
        { Op: ChangeOp.Delete, DeletedAt: { } deletedAt } => Write.Of(change, deletedAt),
        { Op: ChangeOp.Delete } => Write.Of(change, change.ReceivedAt),
        { Fields.Count: > 0 } => Write.Of(change, change.Fields.Values.Max(field => field.UpdatedAt)),
        _ => null,
    };

    /// <summary>Whether a placement wins over the one that put the record where it is (a record not yet placed: any does).</summary>
    public static bool Supersedes(Write? placedBy, Write? current) => placedBy is not null && (current is null || placedBy.Beats(current));
}
