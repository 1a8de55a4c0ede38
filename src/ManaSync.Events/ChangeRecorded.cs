using System.Text.Json;
using System.Text.Json.Serialization;

namespace ManaSync.Events;

/// <summary>
/// One pushed change, as the server received it. Immutable: it is never updated or deleted, so the
/// record view can always be rebuilt from these events ("tombstones forever").
/// </summary>
/// <remarks>
/// Everything the merge needs travels in the event body (Marten's quick append does not show inline
/// projections the event sequence), including where the change sits in commit order
/// (<see cref="CommitTx"/>, <see cref="CommitIndex"/>) and the future limit the server applied.
/// </remarks>
public sealed record ChangeRecorded
{
    public required Guid EventId { get; init; }
    public required int SchemaVersion { get; init; }
    [JsonConverter(typeof(SharedStringJson))]
    public required string UserId { get; init; }
    [JsonConverter(typeof(SharedStringJson))]
    public required string AppId { get; init; }
    [JsonConverter(typeof(SharedStringJson))]
    public required string Table { get; init; }
    public required string RecordId { get; init; }
    public required ChangeOp Op { get; init; }

    /// <summary>Field updates exactly as pushed (original timestamps, never clamped).</summary>
    public IReadOnlyDictionary<string, FieldChange>? Fields { get; init; }

    /// <summary>Insert snapshot, verbatim.</summary>
    public JsonElement? Data { get; init; }

    /// <summary>Soft-delete time, as pushed; a delete without it is a hard delete (tombstone).</summary>
    public DateTimeOffset? DeletedAt { get; init; }

    /// <summary>The space the change was written into; null for the user's own records.</summary>
    [JsonConverter(typeof(SharedStringJson))]
    public string? SpaceId { get; init; }

    /// <summary>
    /// The scope (the user's own, "u:…", or a space's, "s:…") of the record the change was merged into, as the
    /// server resolved it: a record is one record per (app, table, id) among what its writer can see, so a
    /// change naming another space either moved it (<see cref="MovedFrom"/>) or lost to a later placement and
    /// went to where the record is. Null in events stored before records could move: the scope of <see cref="SpaceId"/>.
    /// </summary>
    [JsonConverter(typeof(SharedStringJson))]
    public string? RecordScope { get; init; }

    /// <summary>The scope the record left when this change moved it to <see cref="RecordScope"/>.</summary>
    [JsonConverter(typeof(SharedStringJson))]
    public string? MovedFrom { get; init; }

    /// <summary>The record as it was in <see cref="MovedFrom"/> (a serialized record view), carried to its new scope.</summary>
    public JsonElement? MovedState { get; init; }

    /// <summary>Who made the change when it was not the user (e.g. an AI agent); opaque JSON.</summary>
    public JsonElement? Actor { get; init; }

    [JsonConverter(typeof(SharedStringJson))]
    public string? ClientId { get; init; }

    /// <summary>Server receive time: the stamp of inserts without timestamps and of hard deletes.</summary>
    public required DateTimeOffset ReceivedAt { get; init; }

    /// <summary>Client timestamps later than this were clamped to <see cref="ReceivedAt"/> when merged.</summary>
    public required DateTimeOffset FutureLimit { get; init; }

    /// <summary>PostgreSQL transaction id (xid8) of the push that stored this event: the cursor position.</summary>
    public required long CommitTx { get; init; }

    /// <summary>Index of the event inside the transaction that stored it: orders events of one transaction.</summary>
    public required int CommitIndex { get; init; }

    /// <summary>Index of the change inside the batch the client pushed: breaks ties between its changes.</summary>
    public required int BatchIndex { get; init; }
}

public enum ChangeOp
{
    Insert,
    Update,
    Delete,
}

/// <summary>A field update as it travels on the wire: the new value and the client's timestamp.</summary>
public sealed record FieldChange(JsonElement Value, DateTimeOffset UpdatedAt);
