using System.Text.Json;
using ManaSync.Events;

namespace ManaSync.Web.Features.WritePath;

/// <summary>
/// A change as a write path read it (a pushed change, an archive line, a row of the Go service), before the
/// server stores it. Every path turns its input into this, and <see cref="ToEvent"/> is the one place an event
/// is made from it, so an event holds the same thing whichever path stored it.
/// </summary>
public sealed record IncomingChange
{
    public Guid? EventId { get; init; }

    /// <summary>Absent and 0 mean 1.</summary>
    public required int SchemaVersion { get; init; }

    public required string UserId { get; init; }
    public required string AppId { get; init; }
    public required string Table { get; init; }
    public required string RecordId { get; init; }
    public required ChangeOp Op { get; init; }
    public IReadOnlyDictionary<string, FieldChange>? Fields { get; init; }
    public JsonElement? Data { get; init; }
    public DateTimeOffset? DeletedAt { get; init; }

    /// <summary>Top-level spaceId, else data.spaceId, else fields.spaceId.value; empty means none.</summary>
    public string? SpaceId { get; init; }

    /// <summary>The space the change names, or null for none: what its event stores.</summary>
    public string? Space => string.IsNullOrEmpty(SpaceId) ? null : SpaceId;

    public JsonElement? Actor { get; init; }
    public string? ClientId { get; init; }

    /// <summary>When the server received the change: now for a push, the original receive time for a restore or migration.</summary>
    public required DateTimeOffset ReceivedAt { get; init; }

    /// <param name="commitTx">The storing transaction's id: the event's cursor position.</param>
    /// <param name="index">The change's place among the changes that transaction stores: orders them and breaks their ties.</param>
    /// <param name="maxClockSkew">How far past its receive time a client timestamp may lie before the merge clamps it.</param>
    public ChangeRecorded ToEvent(long commitTx, int index, TimeSpan maxClockSkew) => new()
    {
        EventId = EventId ?? Guid.CreateVersion7(ReceivedAt),
        SchemaVersion = Math.Max(SchemaVersion, 1),
        UserId = UserId,
        AppId = AppId,
        Table = Table,
        RecordId = RecordId,
        Op = Op,
        Fields = Fields,
        Data = Data,
        DeletedAt = DeletedAt,
        SpaceId = Space,
        Actor = Actor,
        ClientId = string.IsNullOrEmpty(ClientId) ? null : ClientId,
        ReceivedAt = ReceivedAt,
        FutureLimit = ReceivedAt + maxClockSkew,
        CommitTx = commitTx,
        CommitIndex = index,
        BatchIndex = index,
    };
}
