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
    public static Write? Of(ChangeRecorded change) => StampOf(change) is { } stamp ? Write.Of(change, stamp) : null;

    /// <summary>The client stamp of <see cref="Of"/>: an update's is its latest field's.</summary>
    public static DateTimeOffset? StampOf(ChangeRecorded change)
    {
        switch (change)
        {
            case { Op: ChangeOp.Insert }: return RecordView.InsertStamp(change);
            case { Op: ChangeOp.Delete }: return change.DeletedAt ?? change.ReceivedAt;
            case { Fields.Count: > 0 }:
                DateTimeOffset? latest = null;
                foreach (var field in change.Fields.Values)
                    if (latest is null || field.UpdatedAt > latest)
                        latest = field.UpdatedAt;
                return latest;
            default: return null;
        }
    }

    /// <summary>Whether a placement wins over the one that put the record where it is (a record not yet placed: any does).</summary>
    public static bool Supersedes(Write? placedBy, Write? current) => placedBy is not null && (current is null || placedBy.Beats(current));
}
