using System.Text.Json;
using ManaSync.Events;
using ManaSync.Web.Features.WritePath;

namespace ManaSync.Web.Features.Migration;

/// <summary>One row of the Go service's <c>sync_changes</c> table (PROTOCOL §13); columns added later may be missing.</summary>
public sealed record GoRow(
    Guid Id,
    string AppId,
    string Table,
    string RecordId,
    string UserId,
    string Op,
    JsonElement? Data,
    JsonElement? FieldTimestamps,
    string ClientId,
    DateTimeOffset CreatedAt,
    JsonElement? Actor,
    int SchemaVersion,
    string? SpaceId)
{
    /// <summary>
    /// The row as a change to store, with the row's id as eventId and its receive time kept. The Go service
    /// stored an update as its fields' values (data) and timestamps (field_timestamps), and a soft delete
    /// as data.deletedAt alone.
    /// </summary>
    /// <remarks>
    /// A soft delete also sets updatedAt to its time, as every client applied it (and as the client that
    /// made it sent it: the Go service dropped the fields of deletes). A field whose timestamp is missing or
    /// unreadable is stamped with the row's receive time.
    /// </remarks>
    public IncomingChange ToIncoming()
    {
        var data = Data is { ValueKind: JsonValueKind.Object } objectData ? objectData : (JsonElement?)null;
        var op = Op switch { "insert" => ChangeOp.Insert, "update" => ChangeOp.Update, _ => ChangeOp.Delete };
        var softDelete = op == ChangeOp.Delete && data?.TryGetProperty("deletedAt", out var soft) == true && soft.ValueKind == JsonValueKind.String
            ? soft
            : (JsonElement?)null;
        var deletedAt = softDelete is { } sent ? Timestamps.TryRead(sent, out var at) ? at : CreatedAt : (DateTimeOffset?)null;
        return new IncomingChange
        {
            EventId = Id,
            SchemaVersion = SchemaVersion,
            UserId = UserId,
            AppId = AppId,
            Table = Table,
            RecordId = RecordId,
            Op = op,
            Data = op == ChangeOp.Insert ? data ?? JsonSerializer.SerializeToElement(new { }) : null,
            Fields = op switch
            {
                ChangeOp.Update => data?.EnumerateObject().ToDictionary(field => field.Name, field => new FieldChange(field.Value.Clone(), StampOf(field.Name))),
                _ when deletedAt is { } stamp => new Dictionary<string, FieldChange> { ["updatedAt"] = new(softDelete!.Value.Clone(), stamp) },
                _ => null,
            },
            DeletedAt = deletedAt,
            SpaceId = SpaceId,
            Actor = Actor is { ValueKind: JsonValueKind.Object } actor ? actor : null,
            ClientId = ClientId,
            ReceivedAt = CreatedAt,
        };
    }

    private DateTimeOffset StampOf(string field) =>
        FieldTimestamps is { ValueKind: JsonValueKind.Object } stamps && stamps.TryGetProperty(field, out var stamp) &&
        Timestamps.TryRead(stamp, out var at)
            ? at
            : CreatedAt;
}
