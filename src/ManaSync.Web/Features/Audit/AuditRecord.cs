using System.Text.Json;
using ManaSync.Events;
using ManaSync.Projections.Records;

namespace ManaSync.Web.Features.Audit;

public sealed record AuditField(JsonElement Value, string UpdatedAt);

/// <summary>A record as an auditor reads it: alive or deleted, where it lives, and each live field with its updatedAt.</summary>
public sealed record AuditRecord(string Id, bool Deleted, string? SpaceId, IReadOnlyDictionary<string, AuditField> Fields)
{
    public static AuditRecord Of(RecordView view) => new(view.RecordId, !view.IsLive, view.SpaceId,
        LiveState.Of(view).OrderBy(field => field.Name, StringComparer.Ordinal)
            .ToDictionary(field => field.Name, field => new AuditField(field.Value, Timestamps.Format(field.Write.Stamp))));
}
