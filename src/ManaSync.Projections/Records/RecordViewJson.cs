using System.Text.Json;
using System.Text.Json.Serialization;

namespace ManaSync.Projections.Records;

/// <summary>
/// Stores a view with each distinct write once, its fields pointing at their write by index. One
/// change usually wins several fields with the same write; stored inline, every field repeated it,
/// which doubled a four-field record's JSON, pushed it over PostgreSQL's 2 kB compression threshold,
/// and doubled the JSON every push and pull parses (docs/benchmarks.md).
/// Views stored before, with each write inline, are read as well.
/// </summary>
public sealed class RecordViewJson : JsonConverter<RecordView>
{
    public override void Write(Utf8JsonWriter writer, RecordView view, JsonSerializerOptions options)
    {
        var writes = new List<Write>();
        var indexes = new Dictionary<Write, int>(SameWrite.Instance);
        int IndexOf(Write write)
        {
            if (indexes.TryGetValue(write, out var index)) return index;
            indexes[write] = writes.Count;
            writes.Add(write);
            return writes.Count - 1;
        }

        writer.WriteStartObject();
        writer.WriteString("id", view.Id);
        writer.WriteString("scope", view.Scope);
        writer.WriteString("appId", view.AppId);
        writer.WriteString("tableName", view.TableName);
        writer.WriteString("recordId", view.RecordId);
        if (view.SpaceId is not null) writer.WriteString("spaceId", view.SpaceId);
        writer.WriteNumber("positionTx", view.PositionTx);
        writer.WriteNumber("positionIndex", view.PositionIndex);
        if (view.Born is { } born)
        {
            writer.WritePropertyName("born");
            JsonSerializer.Serialize(writer, born, options);
        }
        if (view.Reissued is { } reissued)
        {
            writer.WritePropertyName("reissued");
            JsonSerializer.Serialize(writer, reissued, options);
        }

        writer.WriteStartObject("fields");
        foreach (var (name, field) in view.Fields)
        {
            writer.WriteStartObject(name);
            writer.WritePropertyName("value");
            field.Value.WriteTo(writer);
            writer.WriteNumber("write", IndexOf(field.Write));
            writer.WriteEndObject();
        }
        writer.WriteEndObject();
        if (view.Inserted is not null) writer.WriteNumber("inserted", IndexOf(view.Inserted));
        if (view.Tombstone is not null) writer.WriteNumber("tombstone", IndexOf(view.Tombstone));
        if (view.PlacedAs is not null) writer.WriteString("placedAs", view.PlacedAs);
        if (view.PlacedBy is not null) writer.WriteNumber("placedBy", IndexOf(view.PlacedBy));
        if (view.MovedTo is not null) writer.WriteString("movedTo", view.MovedTo);
        if (view.MovedAway is not null) writer.WriteNumber("movedAway", IndexOf(view.MovedAway));

        writer.WritePropertyName("writes");
        JsonSerializer.Serialize(writer, writes, options);
        writer.WriteEndObject();
    }

    public override RecordView Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        // PostgreSQL's jsonb orders keys by length, so "writes" may come after the fields that point into it.
        var json = JsonElement.ParseValue(ref reader);
        var writes = json.TryGetProperty("writes", out var stored)
            ? stored.EnumerateArray().Select(write => write.Deserialize<Write>(options)!).ToList()
            : [];
        Write? WriteAt(JsonElement reference) => reference.ValueKind switch
        {
            JsonValueKind.Number => writes[reference.GetInt32()],
            JsonValueKind.Object => reference.Deserialize<Write>(options),
            _ => null,
        };

        var view = new RecordView
        {
            Id = json.GetProperty("id").GetString()!,
            Scope = json.GetProperty("scope").GetString()!,
            AppId = json.GetProperty("appId").GetString()!,
            TableName = json.GetProperty("tableName").GetString()!,
            RecordId = json.GetProperty("recordId").GetString()!,
            SpaceId = Optional(json, "spaceId")?.GetString(),
            PositionTx = json.GetProperty("positionTx").GetInt64(),
            PositionIndex = json.GetProperty("positionIndex").GetInt32(),
            Born = Optional(json, "born")?.Deserialize<Position>(options),
            Reissued = Optional(json, "reissued")?.Deserialize<Position>(options),
            Inserted = Optional(json, "inserted") is { } inserted ? WriteAt(inserted) : null,
            Tombstone = Optional(json, "tombstone") is { } tombstone ? WriteAt(tombstone) : null,
            PlacedAs = Optional(json, "placedAs")?.GetString(),
            PlacedBy = Optional(json, "placedBy") is { } placedBy ? WriteAt(placedBy) : null,
            MovedTo = Optional(json, "movedTo")?.GetString(),
            MovedAway = Optional(json, "movedAway") is { } movedAway ? WriteAt(movedAway) : null,
        };
        foreach (var field in json.GetProperty("fields").EnumerateObject())
            view.Fields[field.Name] = new FieldState(field.Value.GetProperty("value"), WriteAt(field.Value.GetProperty("write"))!);
        return view;
    }

    /// <summary>How a record's state travels inside an event when the record moves (<see cref="Events.ChangeRecorded.MovedState"/>).</summary>
    private static readonly JsonSerializerOptions StateOptions = new(JsonSerializerDefaults.Web);

    public static JsonElement WriteState(RecordView view) => JsonSerializer.SerializeToElement(view, StateOptions);

    public static RecordView ReadState(JsonElement state) => state.Deserialize<RecordView>(StateOptions)!;

    private static JsonElement? Optional(JsonElement json, string name) =>
        json.TryGetProperty(name, out var value) && value.ValueKind != JsonValueKind.Null ? value : null;

    /// <summary>Writes equal in every member; actors compared by content, as JSON elements have no value equality.</summary>
    private sealed class SameWrite : IEqualityComparer<Write>
    {
        public static readonly SameWrite Instance = new();

        public bool Equals(Write? a, Write? b) =>
            ReferenceEquals(a, b) ||
            (a is not null && b is not null && a.Stamp == b.Stamp && a.ReceivedAt == b.ReceivedAt && a.BatchIndex == b.BatchIndex &&
             a.EventId == b.EventId && a.ClientId == b.ClientId && a.UserId == b.UserId && a.Position == b.Position &&
             a.SchemaVersion == b.SchemaVersion &&
             (a.Actor, b.Actor) switch
             {
                 (null, null) => true,
                 ({ } x, { } y) => JsonElement.DeepEquals(x, y),
                 _ => false,
             });

        public int GetHashCode(Write write) => HashCode.Combine(write.EventId, write.Stamp.UtcTicks);
    }
}
