using System.Text.Json;
using ManaSync.Events;

namespace ManaSync.Web.Features.WritePath;

/// <summary>
/// Whether two events carry the same change, so a retry of a stored event is recognised however either
/// was stored (push, import, migration) and however its JSON was written.
/// </summary>
/// <remarks>
/// Compared is what a change does and what an archive keeps of it (PROTOCOL §9): its record, op, schema
/// version, fields with their instants, soft-delete instant, space and actor, and for an insert its snapshot's
/// members that no field of the same change overrides. Not compared: when and from which client it arrived,
/// and an update's or delete's data, which the merge never reads. JSON is compared by value (member order
/// and number spelling do not matter), timestamps as instants.
/// </remarks>
public static class ChangePayload
{
    public static bool Same(ChangeRecorded a, ChangeRecorded b) =>
        a.AppId == b.AppId && a.Table == b.Table && a.RecordId == b.RecordId && a.Op == b.Op &&
        a.SchemaVersion == b.SchemaVersion &&
        a.SpaceId == b.SpaceId &&
        a.DeletedAt?.UtcTicks == b.DeletedAt?.UtcTicks &&
        SameJson(a.Actor, b.Actor) &&
        SameFields(a.Fields, b.Fields) &&
        (a.Op != ChangeOp.Insert || SameSnapshot(a, b));

    private static bool SameFields(IReadOnlyDictionary<string, FieldChange>? a, IReadOnlyDictionary<string, FieldChange>? b)
    {
        if ((a?.Count ?? 0) != (b?.Count ?? 0)) return false;
        foreach (var (name, field) in a ?? new Dictionary<string, FieldChange>())
            if (!b!.TryGetValue(name, out var other) || other.UpdatedAt.UtcTicks != field.UpdatedAt.UtcTicks ||
                !JsonElement.DeepEquals(field.Value, other.Value))
                return false;
        return true;
    }

    /// <summary>An archive line keeps one value per name: a field's wins over the snapshot's member.</summary>
    private static bool SameSnapshot(ChangeRecorded a, ChangeRecorded b)
    {
        var (first, second) = (SnapshotBesideFields(a), SnapshotBesideFields(b));
        return first.Count == second.Count &&
               first.All(member => second.TryGetValue(member.Key, out var other) && JsonElement.DeepEquals(member.Value, other));
    }

    private static Dictionary<string, JsonElement> SnapshotBesideFields(ChangeRecorded change) =>
        change.Data is { ValueKind: JsonValueKind.Object } data
            ? data.EnumerateObject().Where(member => change.Fields?.ContainsKey(member.Name) != true)
                .ToDictionary(member => member.Name, member => member.Value, StringComparer.Ordinal)
            : [];

    private static bool SameJson(JsonElement? a, JsonElement? b) =>
        a is null ? b is null : b is not null && JsonElement.DeepEquals(a.Value, b.Value);
}
