using ManaSync.Events;
using ManaSync.Projections.Records;

namespace ManaSync.Web.Features.Sync;

/// <summary>
/// Turns a record view into the one change a client needs to catch up from its cursor: a record born
/// after the cursor comes as an insert, an older one as an update, both with the whole live state; a
/// deleted one as a delete.
/// </summary>
/// <remarks>
/// Not just the fields changed since the cursor: the feed orders records by their latest write, so a
/// record written again moves past the end of the page (or the commit horizon) a client is reading,
/// and its older fields were then never sent. The client's apply step keeps whichever of two values
/// is newer, so receiving a field it already holds is harmless.
/// </remarks>
public static class ChangeEmitter
{
    /// <returns>null when the client needs nothing: nothing changed since its cursor, or it wrote all the record holds.</returns>
    public static WireChange? Emit(RecordView view, Since since, string? excludeClientId)
    {
        var changed = view.Writes().Where(write => write.Position >= since.From).ToList();
        if (changed.Count == 0) return null;
        if (excludeClientId is not null && view.Writes().All(write => write.ClientId == excludeClientId)) return null;

        // A client reading from the very beginning holds nothing yet: deletes mean nothing to it.
        var fromScratch = since == Since.Beginning;
        if (!view.IsLive)
            return fromScratch ? null : Change(view, "delete", changed, fields: null, data: null);

        var live = view.LiveFields().ToList();
        if (fromScratch || view.Born >= since.From)
        {
            var data = live.ToDictionary(field => field.Key, field => field.Value.Value);
            return Change(view, "insert", changed, Fields(live), data);
        }
        return live.Count == 0 ? null : Change(view, "update", changed, Fields(live), data: null);
    }

    private static Dictionary<string, WireField> Fields(IEnumerable<KeyValuePair<string, FieldState>> fields) =>
        fields.ToDictionary(field => field.Key,
            field => new WireField(field.Value.Value, Timestamps.Format(field.Value.Write.Stamp)));

    private static WireChange Change(RecordView view, string op, List<Write> changed,
        Dictionary<string, WireField>? fields, Dictionary<string, System.Text.Json.JsonElement>? data)
    {
        var latest = changed.MaxBy(write => write.Position)!;
        return new WireChange
        {
            EventId = latest.EventId.ToString(),
            SchemaVersion = latest.SchemaVersion,
            Table = view.TableName,
            Id = view.RecordId,
            Op = op,
            Fields = fields,
            Data = data,
            DeletedAt = fields is not null && fields.TryGetValue(FieldNames.DeletedAt, out var deletedAt) &&
                        deletedAt.Value.ValueKind == System.Text.Json.JsonValueKind.String
                ? deletedAt.Value.GetString()
                : null,
            SpaceId = view.SpaceId,
            Actor = latest.Actor,
        };
    }
}
