using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Runtime.CompilerServices;
using System.Text.Json;
using ManaSync.Events;
using ManaSync.Testing;
using ManaSync.Web.Features.Backup;
using Npgsql;

namespace ManaSync.Bench;

/// <summary>
/// Export of one large account: MB/s and the server's memory while it streams, beside raw PostgreSQL
/// reading the same event rows (COPY … TO STDOUT). The account is loaded through the import endpoint.
/// </summary>
public static class ExportScenario
{
    public static async Task RunAsync(string[] args)
    {
        var events = args.Length > 0 ? int.Parse(args[0]) : 1_000_000;
        var database = await TestCluster.CreateDatabaseAsync();
        await using var server = await ServerProcess.StartAsync(database);
        var token = (await server.ClientForAsync("bench-user")).Token;

        await LoadAsync(server.BaseAddress, token, database, events);
        var (rawBytes, rawSeconds) = await RawCopyAsync(database);

        var (baseline, peak, (bytes, took)) = await Stats.PeakResidentBytesAsync(server.ProcessId, () => ExportAsync(server.BaseAddress, token));

        var exportMbps = bytes / 1e6 / took.TotalSeconds;
        var uncompressedMbps = rawBytes / 1e6 / took.TotalSeconds;
        var rawMbps = rawBytes / 1e6 / rawSeconds;
        Console.WriteLine();
        Console.WriteLine("| measure | ManaSync export | raw PostgreSQL (COPY of the event rows) | ratio |");
        Console.WriteLine("|---|---|---|---|");
        Console.WriteLine($"| time for {events:N0} events | {took.TotalSeconds:F1} s | {rawSeconds:F1} s | {took.TotalSeconds / rawSeconds:F1}× |");
        Console.WriteLine($"| event data read, MB/s | {uncompressedMbps:F1} | {rawMbps:F1} | {uncompressedMbps / rawMbps:F2} |");
        Console.WriteLine($"| archive written, MB/s (zip) | {exportMbps:F1} | | |");
        Console.WriteLine($"| server memory growth while exporting (peak RSS − before) | {(peak - baseline) / 1e6:F0} MB | | |");
        Console.WriteLine();
        Console.WriteLine($"archive {bytes / 1e6:F0} MB; event rows {rawBytes / 1e6:F0} MB as PostgreSQL sends them");
    }

    /// <summary>
    /// Loads one account of <paramref name="events"/> events over <paramref name="records"/> records (default a tenth of
    /// the events) through /backup/import, then vacuums the log as autovacuum would (hint bits and the visibility map set,
    /// so no reader pays for the first read after a bulk load).
    /// </summary>
    public static async Task LoadAsync(Uri server, string token, string database, int events, int? records = null)
    {
        var archive = Path.GetTempFileName();
        var load = Stopwatch.StartNew();
        await using (var file = File.Create(archive))
            await BackupArchive.WriteAsync(file, "bench-user", DateTimeOffset.UtcNow, Generate(events, records), 1, CancellationToken.None);
        using (var import = new HttpRequestMessage(HttpMethod.Post, "/backup/import") { Content = new StreamContent(File.OpenRead(archive)) })
        {
            import.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
            using var http = new HttpClient { BaseAddress = server, Timeout = TimeSpan.FromHours(1) };
            using var imported = await http.SendAsync(import);
            if (imported.StatusCode != HttpStatusCode.OK) throw new InvalidOperationException(await imported.Content.ReadAsStringAsync());
        }
        File.Delete(archive);
        Console.WriteLine($"loaded {events:N0} events through /backup/import in {load.Elapsed.TotalSeconds:F0} s");

        await using var vacuum = new NpgsqlConnection(database);
        await vacuum.OpenAsync();
        await using var command = new NpgsqlCommand("vacuum (analyze) manasync.mt_events", vacuum) { CommandTimeout = 0 };
        await command.ExecuteNonQueryAsync();
    }

    /// <summary>Reads the whole export of the account; returns the archive's size and how long it took.</summary>
    public static async Task<(long Bytes, TimeSpan Took)> ExportAsync(Uri server, string token)
    {
        var export = Stopwatch.StartNew();
        using var request = new HttpRequestMessage(HttpMethod.Get, "/backup/export");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        using var http = new HttpClient { BaseAddress = server, Timeout = TimeSpan.FromHours(1) };
        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        await using var body = await response.Content.ReadAsStreamAsync();
        var sink = new CountingSink();
        await body.CopyToAsync(sink);
        return (sink.Count, export.Elapsed);
    }

    /// <summary>
    /// Inserts <paramref name="records"/> records (default 100 per 1,000 events), then updates them in turn: by default an
    /// account with long histories.
    /// </summary>
    internal static async IAsyncEnumerable<ChangeRecorded> Generate(int count, int? records = null,
        [EnumeratorCancellation] CancellationToken cancellation = default)
    {
        var start = new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);
        var distinct = Math.Clamp(records ?? count / 10, 1, Math.Max(1, count));
        for (var i = 0; i < count; i++)
        {
            var at = start.AddMilliseconds(i);
            var inserts = i < distinct;
            yield return new ChangeRecorded
            {
                EventId = Guid.CreateVersion7(at), SchemaVersion = 1, UserId = "bench-user", AppId = "todo", Table = "tasks",
                RecordId = $"r{i % distinct}", Op = inserts ? ChangeOp.Insert : ChangeOp.Update,
                Data = inserts ? JsonSerializer.SerializeToElement(new { title = $"task {i}", done = false }) : null,
                Fields = inserts ? null : new Dictionary<string, FieldChange>
                {
                    ["title"] = new(JsonSerializer.SerializeToElement($"task {i} edited"), at),
                },
                ClientId = "bench", ReceivedAt = at, FutureLimit = at.AddMinutes(5), CommitTx = 0, CommitIndex = 0, BatchIndex = 0,
            };
            if (i % 10_000 == 0) await Task.Yield();
        }
    }

    public static async Task<(long Bytes, double Seconds)> RawCopyAsync(string database)
    {
        await using var connection = new NpgsqlConnection(database);
        await connection.OpenAsync();
        var watch = Stopwatch.StartNew();
        await using var copy = await connection.BeginRawBinaryCopyAsync(
            "copy (select data from manasync.mt_events order by seq_id) to stdout (format binary)");
        var sink = new CountingSink();
        await copy.CopyToAsync(sink);
        return (sink.Count, watch.Elapsed.TotalSeconds);
    }

    private sealed class CountingSink : Stream
    {
        public long Count { get; private set; }
        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => Count;
        public override long Position { get => Count; set => throw new NotSupportedException(); }
        public override void Write(byte[] buffer, int offset, int count) => Count += count;
        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            Count += buffer.Length;
            return ValueTask.CompletedTask;
        }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
    }
}
