using System.IO.Compression;
using System.Security.Cryptography;
using System.Text.Json;
using ManaSync.Events;
using ManaSync.Web.Infrastructure;

namespace ManaSync.Web.Features.Backup;

/// <summary>
/// Writes a .mana archive in one pass: events.jsonl (streamed, hashed on the way), then
/// manifest.json. Memory stays constant whatever the number of events.
/// </summary>
public static class BackupArchive
{
    public const string EventsEntry = "events.jsonl";
    public const string ManifestEntry = "manifest.json";

    public static async Task<BackupManifest> WriteAsync(Stream output, string userId, DateTimeOffset createdAt,
        IAsyncEnumerable<ChangeRecorded> events, int schemaVersion, CancellationToken cancellation)
    {
        var spool = new SpoolingStream(output);
        var manifest = await WriteZipAsync(spool, userId, createdAt, events, schemaVersion, cancellation);
        await spool.DrainAsync(cancellation, atLeast: 0);
        return manifest;
    }

    private static async Task<BackupManifest> WriteZipAsync(SpoolingStream output, string userId, DateTimeOffset createdAt,
        IAsyncEnumerable<ChangeRecorded> events, int schemaVersion, CancellationToken cancellation)
    {
        await using var zip = await ZipArchive.CreateAsync(output, ZipArchiveMode.Create, leaveOpen: true, entryNameEncoding: null, cancellation);
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var apps = new SortedSet<string>(StringComparer.Ordinal);
        long count = 0;
        int? minVersion = null, maxVersion = null;

        await using (var entry = await zip.CreateEntry(EventsEntry, CompressionLevel.Fastest).OpenAsync(cancellation))
        {
            await foreach (var change in events.WithCancellation(cancellation))
            {
                var line = JsonSerializer.SerializeToUtf8Bytes(BackupLine.From(change), WireJson.Options);
                hash.AppendData(line);
                hash.AppendData("\n"u8);
                await entry.WriteAsync(line, cancellation);
                await entry.WriteAsync("\n"u8.ToArray(), cancellation);
                await output.DrainAsync(cancellation);
                apps.Add(change.AppId);
                count++;
                minVersion = Math.Min(minVersion ?? int.MaxValue, change.SchemaVersion);
                maxVersion = Math.Max(maxVersion ?? int.MinValue, change.SchemaVersion);
            }
        }

        var manifest = new BackupManifest
        {
            FormatVersion = BackupManifest.CurrentFormat,
            SchemaVersion = schemaVersion,
            UserId = userId,
            CreatedAt = Timestamps.Format(createdAt),
            EventCount = count,
            EventsSha256 = Convert.ToHexStringLower(hash.GetHashAndReset()),
            Apps = apps.ToList(),
            ProducedBy = BackupManifest.Producer,
            SchemaVersionMin = minVersion,
            SchemaVersionMax = maxVersion,
        };
        await using (var entry = await zip.CreateEntry(ManifestEntry, CompressionLevel.Fastest).OpenAsync(cancellation))
            await JsonSerializer.SerializeAsync(entry, manifest, WireJson.Options, cancellation);
        return manifest;
    }

    /// <summary>"mana-backup-{user}-{yyyyMMdd-HHmmss}.mana", with anything outside [A-Za-z0-9_-] in the user id as '_'.</summary>
    public static string FileName(string userId, DateTimeOffset createdAt) =>
        $"mana-backup-{new string(userId.Select(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-' ? c : '_').ToArray())}" +
        $"-{createdAt.UtcDateTime:yyyyMMdd-HHmmss}.mana";
}
