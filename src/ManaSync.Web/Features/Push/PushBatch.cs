using System.Text.Json;
using ManaSync.Events;

namespace ManaSync.Web.Features.Push;

/// <summary>A validated push request.</summary>
public sealed record PushBatch(string? ClientId, string? Since, IReadOnlyList<PushedChange> Changes);

/// <summary>One validated change of a push, with its index in the batch.</summary>
public sealed record PushedChange
{
    public required int Index { get; init; }
    public Guid? EventId { get; init; }
    public required int SchemaVersion { get; init; }
    public required string Table { get; init; }
    public required string RecordId { get; init; }
    public required ChangeOp Op { get; init; }
    public IReadOnlyDictionary<string, FieldChange>? Fields { get; init; }
    public JsonElement? Data { get; init; }
    public DateTimeOffset? DeletedAt { get; init; }

    /// <summary>Top-level spaceId, else data.spaceId, else fields.spaceId.value.</summary>
    public string? SpaceId { get; init; }

    public JsonElement? Actor { get; init; }
    public required string PayloadHash { get; init; }
}
