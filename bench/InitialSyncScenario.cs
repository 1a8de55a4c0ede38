using System.Diagnostics;
using System.Net;
using System.Text;
using System.Text.Json;
using ManaSync.Testing;
using Npgsql;

namespace ManaSync.Bench;

/// <summary>
/// Initial sync: a fresh device pulls every page of an account's table, as Dexie clients do on
/// first start (default page size). Accounts of 1,000, 10,000 and 100,000 records, and one of
/// 10,000 records each written ten times, beside raw PostgreSQL reading the same view rows (COPY).
/// </summary>
public static class InitialSyncScenario
{
    private const int LoadBatch = 1000;

    public static async Task RunAsync(string[] args)
    {
        var largest = args.Length > 0 ? int.Parse(args[0]) : 100_000;
        await using var server = await ProductionServer.StartAsync();
        var accounts = new List<(string User, int Records, int WritesPerRecord)>
        {
            ("sync-1k", 1_000, 1), ("sync-10k", 10_000, 1), ("sync-10k-x10", 10_000, 10), ($"sync-{largest}", largest, 1),
        };
        foreach (var (user, records, writes) in accounts) await LoadAsync(server.ClientFor(user, "loader"), records, writes);
        await RawPostgres.ExecuteAsync(server.Database, "vacuum (analyze) manasync.mt_doc_recordview");

        Console.WriteLine();
        Console.WriteLine("| account | pages | time | slowest page | records/s | response bytes | raw PostgreSQL (COPY of the view rows) | ratio |");
        Console.WriteLine("|---|---|---|---|---|---|---|---|");
        foreach (var (user, records, writes) in accounts)
        {
            var device = server.ClientFor(user, "fresh-device");
            var watch = Stopwatch.StartNew();
            var (pages, received, bytes, slowest) = await PullEverythingAsync(device);
            var seconds = watch.Elapsed.TotalSeconds;
            if (received != records) throw new InvalidOperationException($"{user}: pulled {received} of {records} records");
            var raw = await RawCopySecondsAsync(server.Database, user);
            Console.WriteLine($"| {records:N0} records × {writes} write{(writes > 1 ? "s" : "")} | {pages} | {seconds:F2} s | {slowest:F0} ms | {records / seconds:F0} | " +
                              $"{bytes / 1e6:F1} MB | {raw * 1000:F0} ms | {seconds / raw:F0}× |");
        }
    }

    /// <summary>Pushes the records in batches of 1,000, then rewrites a field of each as many times as asked.</summary>
    private static async Task LoadAsync(SyncClient loader, int records, int writesPerRecord)
    {
        var stamp = DateTime.UtcNow;
        for (var write = 0; write < writesPerRecord; write++)
            for (var first = 0; first < records; first += LoadBatch)
            {
                var at = stamp.AddSeconds(write).ToString("yyyy-MM-ddTHH:mm:ss.fffZ");
                var body = new StringBuilder("{\"changes\":[");
                for (var i = first; i < Math.Min(first + LoadBatch, records); i++)
                {
                    if (i > first) body.Append(',');
                    body.Append(write == 0
                        ? $$$"""{"table":"tasks","id":"r{{{i}}}","op":"insert","data":{"title":"Buy oat milk {{{i}}}","done":false,"order":{{{i}}},"note":"Two litres, the barista kind"}}"""
                        : $$$$"""{"table":"tasks","id":"r{{{{i}}}}","op":"update","fields":{"title":{"value":"Buy oat milk {{{{i}}}} v{{{{write}}}}","updatedAt":"{{{{at}}}}"}}}""");
                }
                (await loader.PushRawAsync("todo", Encoding.UTF8.GetBytes(body.Append("]}").ToString()))).AssertStatus(HttpStatusCode.OK);
            }
    }

    private static async Task<(int Pages, int Records, long Bytes, double SlowestPageMs)> PullEverythingAsync(SyncClient device)
    {
        string? since = null;
        int pages = 0, records = 0;
        long bytes = 0;
        double slowest = 0;
        while (true)
        {
            var started = Stopwatch.GetTimestamp();
            var reply = await device.PullAsync("todo", "tasks", since);
            slowest = Math.Max(slowest, Stats.Milliseconds(started, Stopwatch.GetTimestamp()));
            reply.AssertStatus(HttpStatusCode.OK);
            pages++;
            bytes += Encoding.UTF8.GetByteCount(reply.Text);
            using var json = JsonDocument.Parse(reply.Text);
            records += json.RootElement.GetProperty("serverChanges").GetArrayLength();
            since = json.RootElement.GetProperty("syncedUntil").GetString();
            if (!json.RootElement.TryGetProperty("hasMore", out var more) || !more.GetBoolean()) return (pages, records, bytes, slowest);
        }
    }

    private static async Task<double> RawCopySecondsAsync(string database, string user)
    {
        await using var connection = new NpgsqlConnection(database);
        await connection.OpenAsync();
        var watch = Stopwatch.StartNew();
        await using var copy = await connection.BeginRawBinaryCopyAsync(
            $"copy (select data from manasync.mt_doc_recordview where scope = 'u:{user}' and app_id = 'todo' and table_name = 'tasks' " +
            "order by position_tx, position_index) to stdout (format binary)");
        await copy.CopyToAsync(Stream.Null);
        return watch.Elapsed.TotalSeconds;
    }
}
