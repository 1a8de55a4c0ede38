using System.Text.Json;
using ManaSync.Events;
using ManaSync.Web.Features.WritePath;

namespace ManaSync.Web.Features.Backup;

/// <summary>One event as a line of events.jsonl in a .mana archive (PROTOCOL §9).</summary>
public sealed record BackupLine
{
    public required string EventId { get; init; }
    public required int SchemaVersion { get; init; }
    public required string AppId { get; init; }
    public required string Table { get; init; }
    public required string Id { get; init; }
    public required string Op { get; init; }

    /// <summary>An insert's snapshot; for other ops the values of the fields the change set.</summary>
    public Dictionary<string, JsonElement>? Data { get; init; }

    /// <summary>The client timestamp of each field the change set (as opposed to the insert's snapshot).</summary>
    public Dictionary<string, string>? FieldTimestamps { get; init; }

    public string? DeletedAt { get; init; }
    public string? SpaceId { get; init; }
    public JsonElement? Actor { get; init; }
    public required string ClientId { get; init; }

    /// <summary>When the server received the change.</summary>
    public required string CreatedAt { get; init; }

    /// <summary>The change again, for the importing user, received when it was first received.</summary>
    public IncomingChange ToIncoming(string userId)
    {
        var fieldNames = FieldTimestamps?.Keys.ToHashSet(StringComparer.Ordinal) ?? [];
        var op = Op switch { "insert" => ChangeOp.Insert, "update" => ChangeOp.Update, _ => ChangeOp.Delete };
        var snapshot = Data?.Where(member => !fieldNames.Contains(member.Key)).ToDictionary(member => member.Key, member => member.Value);
        return new IncomingChange
        {
            EventId = Guid.Parse(EventId),
            SchemaVersion = SchemaVersion,
            UserId = userId,
            AppId = AppId,
            Table = Table,
            RecordId = Id,
            Op = op,
            Fields = FieldTimestamps?.ToDictionary(field => field.Key, field => new FieldChange(Data![field.Key], Parse(field.Value))),
            Data = op == ChangeOp.Insert ? JsonSerializer.SerializeToElement(snapshot ?? []) : null,
            DeletedAt = DeletedAt is null ? null : Parse(DeletedAt),
            SpaceId = SpaceId,
            Actor = Actor,
            ClientId = ClientId,
            ReceivedAt = Parse(CreatedAt),
        };
    }

    private static DateTimeOffset Parse(string timestamp) =>
        Timestamps.TryParse(timestamp, out var instant) ? instant : throw new FormatException($"'{timestamp}' is not a timestamp");

    public static BackupLine From(ChangeRecorded change)
    {
        var data = change.Data is { ValueKind: JsonValueKind.Object } snapshot
            ? snapshot.EnumerateObject().ToDictionary(member => member.Name, member => member.Value)
            : null;
        if (change.Fields is { Count: > 0 } fields)
        {
            data ??= new Dictionary<string, JsonElement>();
            foreach (var (name, field) in fields) data[name] = field.Value;
        }
        return new BackupLine
        {
            EventId = change.EventId.ToString(),
            SchemaVersion = change.SchemaVersion,
            AppId = change.AppId,
            Table = change.Table,
            Id = change.RecordId,
            Op = change.Op.ToString().ToLowerInvariant(),
            Data = data,
            FieldTimestamps = change.Fields?.ToDictionary(field => field.Key, field => Timestamps.Format(field.Value.UpdatedAt)),
            DeletedAt = change.DeletedAt is { } deletedAt ? Timestamps.Format(deletedAt) : null,
            SpaceId = change.SpaceId,
            Actor = change.Actor,
            ClientId = change.ClientId ?? "",
            CreatedAt = Timestamps.Format(change.ReceivedAt),
        };
    }
}
