using System.Text.Json;

namespace ManaSync.Web.Features.Sync;

/// <summary>A change as the server sends it to clients (PROTOCOL §3); absent members are omitted.</summary>
public sealed record WireChange
{
    public required string EventId { get; init; }
    public required int SchemaVersion { get; init; }
    public required string Table { get; init; }
    public required string Id { get; init; }
    public required string Op { get; init; }
    public IReadOnlyDictionary<string, WireField>? Fields { get; init; }
    public IReadOnlyDictionary<string, JsonElement>? Data { get; init; }
    public string? DeletedAt { get; init; }
    public string? SpaceId { get; init; }
    public JsonElement? Actor { get; init; }
}

public sealed record WireField(JsonElement Value, string UpdatedAt);

public sealed record WireConflict(
    string Table,
    string Id,
    string Field,
    JsonElement ClientValue,
    string ClientTimestamp,
    JsonElement ServerValue,
    string ServerTimestamp);

/// <summary>The answer of push and pull alike.</summary>
public sealed record SyncResponse(
    IReadOnlyList<WireChange> ServerChanges,
    IReadOnlyList<WireConflict> Conflicts,
    string SyncedUntil,
    bool? HasMore);
