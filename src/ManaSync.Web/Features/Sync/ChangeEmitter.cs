using System.Text.Json;
using ManaSync.Events;
using ManaSync.Projections.Records;

namespace ManaSync.Web.Features.Sync;

/// <summary>
/// Turns a record view into the changes a client needs to catch up from its cursor, in a shape the
/// deployed clients apply correctly: a record born after the cursor comes as an insert, an older one
/// as an update, both with the whole live state; a deleted one as a delete.
/// </summary>
/// <remarks>
/// <para>Not just the fields changed since the cursor: the feed orders records by their latest write, so a
/// record written again moves past the end of the page (or the commit horizon) a client is reading,
/// and its older fields were then never sent. The client's apply step keeps whichever of two values
/// is newer, so receiving a field it already holds is harmless.</para>
/// <para>Deployed clients apply a change with a top-level deletedAt as a soft delete only, ignoring its
/// other fields, and skip it for rows they do not have. So a soft-deleted record comes as a delete
/// first and then an update carrying every live field (deletedAt among them): the update, applied
/// last, gives the merged state, and rebuilds the row on a device that lacks it. An insert never
/// carries a top-level deletedAt, so a new device stores an already soft-deleted record as deleted.</para>
/// <para>Key-path writes are folded into their top-level fields (<see cref="LiveState"/>): clients store
/// inserts with Dexie's <c>put</c>, which takes dotted names literally.</para>
/// <para>A record a rebuild of the views changed (<see cref="RecordView.Reissued"/>) comes to every reader whose cursor is
/// older as a delete and an insert of its whole state: the reader's row is replaced, not merged into.</para>
/// <para>A record that moved to another scope is a delete to a reader who cannot see that scope, and nothing
/// to one who can: that reader gets the record from its new scope. Its spaceId field is where it lives.</para>
/// </remarks>
public static class ChangeEmitter
{
    /// <param name="readerScopes">The scopes the reader can see.</param>
    /// <param name="fromScratch">The reader holds nothing of this table yet, so deletes mean nothing to it.</param>
    /// <returns>Nothing when the client needs nothing: nothing changed since its cursor, or it wrote all the record holds.</returns>
    public static IReadOnlyList<WireChange> Emit(RecordView view, Since since, string? excludeClientId, IReadOnlyCollection<string> readerScopes,
        bool fromScratch = false)
    {
        var changed = view.AllWrites().Where(write => write.Position >= since.From).ToList();
        var reissued = view.Reissued >= since.From;
        if (changed.Count == 0 && !reissued) return [];
        if (excludeClientId is not null && view.SoleClient == excludeClientId) return [];
        // Reissued by a rebuild: announced by the record's latest write, as it now stands.
        if (changed.Count == 0) changed = [view.AllWrites().MaxBy(write => write.Position)!];
        if (view.MovedTo is { } movedTo && readerScopes.Contains(movedTo)) return [];

        if (!view.IsLive) return fromScratch ? [] : [Change(view, "delete", Latest(changed))];

        var live = WithPlacement(view, LiveState.Of(view));
        var fields = live.ToDictionary(field => field.Name, field => new WireField(field.Value, Timestamps.Format(field.Write.Stamp)));
        if (fromScratch || view.Born >= since.From || reissued)
        {
            var insert = Change(view, "insert", Latest(changed), fields, live.ToDictionary(field => field.Name, field => field.Value));
            if (fromScratch) return [insert];
            // Deleted and created again since the cursor, or reissued by a rebuild: a reader may still hold the old record,
            // which the insert alone would merge into (keeping fields the new one lacks, such as a renamed one), so it is
            // deleted first.
            if (view.Tombstone is { } tombstone && tombstone.Position >= since.From) return [Change(view, "delete", tombstone), insert];
            return reissued ? [Change(view, "delete", Latest(changed)), insert] : [insert];
        }
        if (live.Count == 0) return [];

        var update = Change(view, "update", Latest(changed), fields);
        return live.FirstOrDefault(field => field.Name == FieldNames.DeletedAt) is { Value.ValueKind: JsonValueKind.String } deletedAt
            ? [Change(view, "delete", deletedAt.Write, deletedAt: deletedAt.Value.GetString()), update]
            : [update];
    }

    private static Write Latest(List<Write> writes) => writes.MaxBy(write => write.Position)!;

    /// <summary>The spaceId field says where the record lives now, as the change that placed it there named it.</summary>
    private static IReadOnlyList<LiveField> WithPlacement(RecordView view, IReadOnlyList<LiveField> live)
    {
        if (view is not { PlacedAs: { } space, PlacedBy: { } placedBy }) return live;
        var write = live.Where(field => field.Name == SpaceIdField).Select(field => field.Write).FirstOrDefault() is { } current &&
                    current.Beats(placedBy)
            ? current
            : placedBy;
        return [.. live.Where(field => field.Name != SpaceIdField), new LiveField(SpaceIdField, JsonSerializer.SerializeToElement(space), write)];
    }

    private const string SpaceIdField = "spaceId";

    private static WireChange Change(RecordView view, string op, Write write, Dictionary<string, WireField>? fields = null,
        Dictionary<string, JsonElement>? data = null, string? deletedAt = null) => new()
    {
        Fields = fields,
        Data = data,
        DeletedAt = deletedAt,
        EventId = write.EventId.ToString(),
        SchemaVersion = write.SchemaVersion,
        Table = view.TableName,
        Id = view.RecordId,
        Op = op,
        SpaceId = view.SpaceId,
        Actor = write.Actor,
    };
}
