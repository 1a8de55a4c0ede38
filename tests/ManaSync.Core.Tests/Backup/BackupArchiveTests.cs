using System.IO.Compression;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using ManaSync.Events;
using ManaSync.Web.Features.Backup;
using Xunit;

namespace ManaSync.Core.Tests.Backup;

/// <summary>The archive writer and reader on their own, without a host or a database.</summary>
public sealed class BackupArchiveTests
{
    private static async IAsyncEnumerable<ChangeRecorded> Events()
    {
        var at = new DateTimeOffset(2026, 1, 1, 10, 0, 0, TimeSpan.Zero);
        foreach (var (app, version) in new[] { ("todo", 1), ("notes", 2), ("todo", 1) })
        {
            await Task.Yield();
            yield return new ChangeRecorded
            {
                EventId = Guid.NewGuid(), SchemaVersion = version, UserId = "alice", AppId = app, Table = "t", RecordId = "r",
                Op = ChangeOp.Insert, Data = JsonSerializer.SerializeToElement(new { x = 1 }), ClientId = "c", ReceivedAt = at,
                FutureLimit = at, CommitTx = 1, CommitIndex = 0, BatchIndex = 0,
            };
        }
    }

    [Fact]
    public async Task What_the_writer_writes_the_reader_verifies()
    {
        using var buffer = new MemoryStream();
        var written = await BackupArchive.WriteAsync(buffer, "alice", DateTimeOffset.UtcNow, Events(), 2, default);

        var (read, fault) = await BackupReader.VerifyAsync(buffer, default);
        using var zip = new ZipArchive(new MemoryStream(buffer.ToArray()));
        using var events = new MemoryStream();
        await zip.GetEntry("events.jsonl")!.Open().CopyToAsync(events);

        Assert.Null(fault);
        Assert.Equal(3, read!.EventCount);
        Assert.Equal(["notes", "todo"], read.Apps);
        Assert.Equal((1, 2), (read.SchemaVersionMin, read.SchemaVersionMax));
        Assert.Equal(written.EventsSha256, Convert.ToHexStringLower(SHA256.HashData(events.ToArray())));
        Assert.Equal(3, (await BackupReader.LinesAsync(buffer, read, default).ToListAsync()).Count);
    }

    [Fact]
    public async Task A_manifest_that_miscounts_is_refused()
    {
        using var buffer = new MemoryStream();
        await BackupArchive.WriteAsync(buffer, "alice", DateTimeOffset.UtcNow, Events(), 2, default);
        using var altered = new MemoryStream();
        using (var source = new ZipArchive(new MemoryStream(buffer.ToArray())))
        using (var target = new ZipArchive(altered, ZipArchiveMode.Create, leaveOpen: true))
        {
            foreach (var entry in source.Entries)
            {
                await using var from = entry.Open();
                await using var to = target.CreateEntry(entry.FullName).Open();
                if (entry.FullName == "manifest.json")
                {
                    var manifest = JsonNode.Parse(from)!.AsObject();
                    manifest["eventCount"] = 4;
                    await to.WriteAsync(JsonSerializer.SerializeToUtf8Bytes(manifest));
                }
                else await from.CopyToAsync(to);
            }
        }

        var (read, fault) = await BackupReader.VerifyAsync(altered, default);

        Assert.Null(read);
        Assert.Contains("counts 4", fault);
    }
}
