using System.Text.Json;
using System.Text.Json.Serialization;
using ManaSync.Events;

namespace ManaSync.Projections.Records;

/// <summary>
/// The merged current state of one record in one scope: per field the winning value and who wrote it,
/// the latest insert and hard delete, and where the record lives. Merging fields is commutative,
/// associative and idempotent, so any order of the same events yields the same fields; a move carries
/// the state of the scope it leaves, so a rebuild replays events in their order and reproduces it.
/// </summary>
[JsonConverter(typeof(RecordViewJson))]
public sealed class RecordView
{
    public string Id { get; set; } = "";
    public string Scope { get; set; } = "";
    public string AppId { get; set; } = "";
    public string TableName { get; set; } = "";
    public string RecordId { get; set; } = "";
    public string? SpaceId { get; set; }

    public Dictionary<string, FieldState> Fields { get; set; } = new(StringComparer.Ordinal);

    /// <summary>The winning insert: it keeps the record alive even when its snapshot is empty.</summary>
    public Write? Inserted { get; set; }

    /// <summary>The winning hard delete.</summary>
    public Write? Tombstone { get; set; }

    /// <summary>The latest position of any winning write: pulls page by it (duplicated into a column).</summary>
    public long PositionTx { get; set; }

    public int PositionIndex { get; set; }

    /// <summary>Where the record last came to life; a client whose cursor is older receives it as an insert.</summary>
    public Position? Born { get; set; }

    /// <summary>
    /// Where a rebuild of the views changed what the record merges to (a new upcaster, a fixed merge): a reader whose
    /// cursor is older receives its whole state again, as a new device would. Null when no rebuild changed it.
    /// </summary>
    public Position? Reissued { get; set; }

    /// <summary>The spaceId named by the change that placed the record here (<see cref="Placement"/>), and its write.</summary>
    public string? PlacedAs { get; set; }

    public Write? PlacedBy { get; set; }

    /// <summary>Set while the record lives in another scope: where it went, and the write that moved it.</summary>
    public string? MovedTo { get; set; }

    public Write? MovedAway { get; set; }

    [JsonIgnore] public Position Position => new(PositionTx, PositionIndex);

    /// <summary>
    /// The client that made every write a client is told of, when a single one did: that client needs nothing of the
    /// record. The emitter leaves it out by this, and a feed read, from the column it is duplicated into, before loading it.
    /// </summary>
    [JsonIgnore]
    public string? SoleClient
    {
        get
        {
            // A reissued record is new to every client, the one that wrote it included.
            if (Reissued is not null) return null;
            string? sole = null;
            foreach (var write in AllWrites())
            {
                if (write.ClientId is null || (sole is not null && sole != write.ClientId)) return null;
                sole = write.ClientId;
            }
            return sole;
        }
    }

    /// <summary>Alive while it lives here and some write is later than the tombstone; an exact tie goes to the tombstone.</summary>
    [JsonIgnore]
    public bool IsLive
    {
        get
        {
            // A loop rather than Writes().Any(…): it runs twice for every merged event.
            if (MovedTo is not null) return false;
            if (Inserted is not null && IsAlive(Inserted) || Tombstone is not null && IsAlive(Tombstone)) return true;
            foreach (var state in Fields.Values)
                if (IsAlive(state.Write)) return true;
            return false;
        }
    }

    public bool IsAlive(Write write) => Tombstone is null || write.Stamp.UtcTicks > Tombstone.Stamp.UtcTicks;

    public static RecordView Create(ChangeRecorded change)
    {
        var scope = RecordKey.Scope(change);
        return new RecordView
        {
            Id = RecordKey.For(change),
            Scope = scope,
            AppId = change.AppId,
            TableName = change.Table,
            RecordId = change.RecordId,
            SpaceId = RecordKey.SpaceOf(scope),
        };
    }

    public void Apply(ChangeRecorded change)
    {
        var wasLive = IsLive;
        var scope = RecordKey.Scope(change);
        if (change.MovedFrom == Scope && scope != Scope)
        {
            MovedTo = scope;
            MovedAway = Placement.Of(change);
            UpdatePosition();
            return;
        }
        if (change.MovedFrom is not null && change.MovedState is { } moved) Absorb(RecordViewJson.ReadState(moved));

        // The writes a change makes mostly share one stamp (its fields' updatedAt, its placement): they share one object.
        Write? made = null;
        Write WriteAt(DateTimeOffset clientStamp) =>
            made is not null && made.Stamp.EqualsExact(Write.Effective(clientStamp, change)) ? made : made = Write.Of(change, clientStamp);

        switch (change.Op)
        {
            case ChangeOp.Insert:
                var write = WriteAt(InsertStamp(change));
                if (Inserted is null || write.Beats(Inserted)) Inserted = write;
                if (change.Data is { ValueKind: JsonValueKind.Object } data)
                    foreach (var member in data.EnumerateObject()) Merge(member.Name, member.Value, write);
                break;
            case ChangeOp.Delete when change.DeletedAt is { } deletedAt:
                Merge(FieldNames.DeletedAt, Timestamps.ToJson(deletedAt), WriteAt(deletedAt));
                break;
            case ChangeOp.Delete:
                var tombstone = WriteAt(change.ReceivedAt);
                if (Tombstone is null || tombstone.Beats(Tombstone)) Tombstone = tombstone;
                break;
        }

        if (change.Fields is { } fields)
            foreach (var (name, field) in fields)
                Merge(name, field.Value, WriteAt(field.UpdatedAt));

        if (RecordKey.Names(Scope, change.UserId, change.SpaceId) && Placement.StampOf(change) is { } placedAt &&
            WriteAt(placedAt) is var placedBy && Placement.Supersedes(placedBy, PlacedBy))
            (PlacedAs, PlacedBy) = (change.SpaceId, placedBy);
        UpdatePosition();
        if (!wasLive && IsLive) Born = new Position(change.CommitTx, change.CommitIndex);
    }

    /// <summary>The record's state from the scope it left, merged into this one: the record lives here again.</summary>
    private void Absorb(RecordView moved)
    {
        foreach (var (name, field) in moved.Fields) Merge(name, field.Value, field.Write);
        if (moved.Inserted is { } inserted && (Inserted is null || inserted.Beats(Inserted))) Inserted = inserted;
        if (moved.Tombstone is { } tombstone && (Tombstone is null || tombstone.Beats(Tombstone))) Tombstone = tombstone;
        if (Placement.Supersedes(moved.PlacedBy, PlacedBy)) (PlacedAs, PlacedBy) = (moved.PlacedAs, moved.PlacedBy);
        (MovedTo, MovedAway) = (null, null);
    }

    private void UpdatePosition()
    {
        var latest = Reissued ?? Position.Start;
        foreach (var field in Fields.Values) latest = Position.Max(latest, field.Write.Position);
        foreach (var write in (ReadOnlySpan<Write?>)[Inserted, Tombstone, PlacedBy, MovedAway])
            if (write is not null) latest = Position.Max(latest, write.Position);
        (PositionTx, PositionIndex) = (latest.Tx, latest.Index);
    }

    /// <summary>The latest winning writes of the record's data.</summary>
    public IEnumerable<Write> Writes()
    {
        foreach (var field in Fields.Values) yield return field.Write;
        if (Inserted is not null) yield return Inserted;
        if (Tombstone is not null) yield return Tombstone;
    }

    /// <summary>Every write a client has to be told about: the data's, and the ones that placed or moved the record.</summary>
    public IEnumerable<Write> AllWrites()
    {
        foreach (var write in Writes()) yield return write;
        if (PlacedBy is not null) yield return PlacedBy;
        if (MovedAway is not null) yield return MovedAway;
    }

    private void Merge(string name, JsonElement value, Write write)
    {
        if (!Fields.TryGetValue(name, out var current) || write.Beats(current.Write))
            Fields[name] = new FieldState(value.Clone(), write);
    }

    /// <summary>An insert snapshot is stamped with its own updatedAt, else createdAt, else the receive time.</summary>
    public static DateTimeOffset InsertStamp(ChangeRecorded change)
    {
        if (change.Data is { ValueKind: JsonValueKind.Object } data)
            foreach (var name in new[] { FieldNames.UpdatedAt, FieldNames.CreatedAt })
                if (data.TryGetProperty(name, out var stamp) && Timestamps.TryRead(stamp, out var parsed))
                    return parsed;
        return change.ReceivedAt;
    }
}

/// <summary>A field's winning value and its write; a value type, so replacing a field's winner allocates nothing.</summary>
public readonly record struct FieldState(JsonElement Value, Write Write);

public static class FieldNames
{
    public const string DeletedAt = "deletedAt";
    public const string UpdatedAt = "updatedAt";
    public const string CreatedAt = "createdAt";
}
