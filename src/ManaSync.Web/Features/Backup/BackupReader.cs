using System.IO.Compression;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using ManaSync.Events;
using ManaSync.Web.Features.Push;
using ManaSync.Web.Features.Sync;
using ManaSync.Web.Infrastructure;

namespace ManaSync.Web.Features.Backup;

/// <summary>
/// Reads a .mana archive from a seekable stream: <see cref="VerifyAsync"/> checks all of it before
/// anything is stored, <see cref="LinesAsync"/> then reads the events again for storing.
/// </summary>
public static class BackupReader
{
    /// <returns>The manifest, or a fault saying what is wrong with the archive.</returns>
    public static async Task<(BackupManifest? Manifest, string? Fault)> VerifyAsync(Stream archive, CancellationToken cancellation)
    {
        try
        {
            archive.Position = 0;
            await using var zip = await ZipArchive.CreateAsync(archive, ZipArchiveMode.Read, leaveOpen: true, entryNameEncoding: null, cancellation);
            if (zip.GetEntry(BackupArchive.ManifestEntry) is not { } manifestEntry || zip.GetEntry(BackupArchive.EventsEntry) is not { } eventsEntry)
                return (null, $"The archive must hold {BackupArchive.EventsEntry} and {BackupArchive.ManifestEntry}.");

            BackupManifest? manifest;
            await using (var manifestStream = await manifestEntry.OpenAsync(cancellation))
                manifest = await JsonSerializer.DeserializeAsync<BackupManifest>(manifestStream, WireJson.Options, cancellation);
            if (manifest is null || manifest.FormatVersion != BackupManifest.CurrentFormat)
                return (null, $"Only manifest formatVersion {BackupManifest.CurrentFormat} is understood.");

            using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            long count = 0;
            await using (var events = await eventsEntry.OpenAsync(cancellation))
            await foreach (var line in ReadLinesAsync(events, cancellation))
            {
                hash.AppendData(line);
                hash.AppendData("\n"u8);
                count++;
                var (parsed, fault) = Parse(line, manifest.SchemaVersion);
                if (fault is not null) return (null, $"{BackupArchive.EventsEntry} line {count}: {fault}");
                // The manifest describes the archive: an event of an app it does not list means one of the two was altered.
                if (!manifest.Apps.Contains(parsed!.AppId))
                    return (null, $"{BackupArchive.EventsEntry} line {count}: appId \"{parsed.AppId}\" is not among the manifest's apps.");
            }
            if (Convert.ToHexStringLower(hash.GetHashAndReset()) != manifest.EventsSha256)
                return (null, "eventsSha256 does not match the events: the archive is corrupt or was altered.");
            if (count != manifest.EventCount)
                return (null, $"The manifest counts {manifest.EventCount} events; the archive holds {count}.");
            return (manifest, null);
        }
        catch (Exception e) when (e is InvalidDataException or JsonException or IOException or NotSupportedException or DecoderFallbackException)
        {
            return (null, "The archive is not a readable .mana (zip) file: " + e.Message);
        }
    }

    /// <summary>The events of an archive <see cref="VerifyAsync"/> accepted.</summary>
    public static async IAsyncEnumerable<BackupLine> LinesAsync(Stream archive, BackupManifest manifest,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellation)
    {
        archive.Position = 0;
        await using var zip = await ZipArchive.CreateAsync(archive, ZipArchiveMode.Read, leaveOpen: true, entryNameEncoding: null, cancellation);
        await using var events = await zip.GetEntry(BackupArchive.EventsEntry)!.OpenAsync(cancellation);
        await foreach (var line in ReadLinesAsync(events, cancellation))
            yield return Parse(line, manifest.SchemaVersion).Line!;
    }

    /// <summary>A line checked as strictly as a pushed change: the hash proves integrity, not that the content is sane.</summary>
    /// <param name="maxSchemaVersion">The schema version the manifest says the archive was written at.</param>
    public static (BackupLine? Line, string? Fault) Parse(byte[] utf8, int maxSchemaVersion)
    {
        BackupLine? line;
        try
        {
            using var document = JsonDocument.Parse(utf8, new JsonDocumentOptions { MaxDepth = PushValidation.MaxDepth, AllowDuplicateProperties = false });
            if (PushValidation.FindUnstorable(document.RootElement, "event") is { } unstorable) return (null, unstorable);
            line = document.RootElement.Deserialize<BackupLine>(WireJson.Options);
        }
        catch (JsonException e)
        {
            return (null, "not a valid event: " + e.Message.Split(" Path:")[0]);
        }
        if (line is null) return (null, "not an event");
        if (!Guid.TryParse(line.EventId, out _)) return (null, "eventId must be a UUID");
        if (line.Op is not ("insert" or "update" or "delete")) return (null, "op must be insert, update or delete");
        if (!AppId.IsValid(line.AppId)) return (null, AppId.Rule);
        if (line.Table.Length == 0 || line.Id.Length == 0) return (null, "table and id must not be empty");
        if (line.SchemaVersion < 1 || line.SchemaVersion > maxSchemaVersion)
            return (null, $"schemaVersion must be 1 to the manifest's {maxSchemaVersion}");
        if (!Timestamps.TryParse(line.CreatedAt, out _)) return (null, "createdAt must be an RFC 3339 timestamp");
        if (line.DeletedAt is not null && !Timestamps.TryParse(line.DeletedAt, out _)) return (null, "deletedAt must be an RFC 3339 timestamp");
        foreach (var (name, stamp) in line.FieldTimestamps ?? [])
            if (line.Data?.ContainsKey(name) != true || !Timestamps.TryParse(stamp, out _))
                return (null, $"fieldTimestamps.{name} needs a value in data and an RFC 3339 timestamp");
        return (line, null);
    }

    private static async IAsyncEnumerable<byte[]> ReadLinesAsync(Stream utf8,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellation)
    {
        using var reader = new StreamReader(utf8, new UTF8Encoding(false, throwOnInvalidBytes: true));
        while (await reader.ReadLineAsync(cancellation) is { } line)
            if (line.Length > 0) yield return Encoding.UTF8.GetBytes(line);
    }
}
