namespace ManaSync.Web.Features.Backup;

/// <summary>manifest.json of a .mana archive (PROTOCOL §9).</summary>
public sealed record BackupManifest
{
    public const int CurrentFormat = 1;
    public const string Producer = "mana-sync";

    public required int FormatVersion { get; init; }
    public required int SchemaVersion { get; init; }
    public required string UserId { get; init; }
    public required string CreatedAt { get; init; }
    public required long EventCount { get; init; }
    public required string EventsSha256 { get; init; }
    public required IReadOnlyList<string> Apps { get; init; }
    public required string ProducedBy { get; init; }
    public int? SchemaVersionMin { get; init; }
    public int? SchemaVersionMax { get; init; }
}
