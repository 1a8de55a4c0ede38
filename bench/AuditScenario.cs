using System.Diagnostics;
using System.Net;
using System.Text.Json.Nodes;
using ManaSync.Testing;
using ManaSync.Web.Features.Audit;
using Npgsql;
using static ManaSync.Testing.Changes;

namespace ManaSync.Bench;

/// <summary>
/// What auditors wait for (docs/console.md): a record with 1,000 events opening its timeline, and a user's whole history of
/// 1,000,000 events read page by page, with the server's memory meanwhile; each beside PostgreSQL reading the same rows.
/// </summary>
public static class AuditScenario
{
    private const int HistoryLength = 1000;
    private const int Runs = 30;
    private const int PageSize = 1000;

    public static async Task RunAsync(string[] args)
    {
        var events = args.Length > 0 ? int.Parse(args[0]) : 1_000_000;
        await using var production = await ProductionServer.StartAsync();
        var server = production.Server;
        await ExportScenario.LoadAsync(server.BaseAddress, production.ClientFor("bench-user").Token, production.Database, events);
        var auditor = production.AuditorFor("bench-auditor");
        // What the first start of a version with the audit index does once with the events already stored.
        var indexing = await RawAsync(production.Database, async connection =>
        {
            await using var again = new NpgsqlCommand($"truncate manasync.record_events; {RecordIndex.IndexStoredEventsSql}; analyze manasync.record_events",
                connection) { CommandTimeout = 0 };
            await again.ExecuteNonQueryAsync();
        }, runs: 1);

        // One record written 1,000 times: an insert, then updates of its fields, 100 changes a push.
        var writer = production.ClientFor("history-user", "laptop");
        var start = new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);
        var changes = new List<object> { Insert("tasks", "long", new { title = "v0", done = false, updatedAt = Iso(start) }) };
        changes.AddRange(Enumerable.Range(1, HistoryLength - 1).Select(i => (object)Update("tasks", "long", i % 2 == 0 ? "title" : "done",
            i % 2 == 0 ? $"v{i}" : i % 4 == 1, Iso(start.AddSeconds(i)))));
        foreach (var batch in changes.Chunk(100)) (await writer.PushAsync("todo", Batch(batch))).AssertStatus(HttpStatusCode.OK);

        var timeline = new List<double>();
        for (var run = 0; run < Runs; run++)
        {
            var watch = Stopwatch.StartNew();
            var reply = (await auditor.SendRawAsync(HttpMethod.Get, "/audit/todo/tasks/long/history?user=history-user")).AssertStatus(HttpStatusCode.OK);
            timeline.Add(watch.Elapsed.TotalMilliseconds);
            if (reply.Json["events"]!.AsArray().Count != HistoryLength) throw new InvalidOperationException("the timeline is not whole");
        }
        var rawTimeline = await RawAsync(production.Database, async connection =>
        {
            await using var read = new NpgsqlCommand(
                "select data from manasync.mt_events where seq_id in (select seq_id from manasync.record_events where record = $1) order by seq_id",
                connection) { Parameters = { new NpgsqlParameter { Value = RecordIndex.Of("todo", "tasks", "long") } } };
            await using var reader = await read.ExecuteReaderAsync();
            while (await reader.ReadAsync()) reader.GetString(0);
        });

        // The whole history of the big account, a page at a time, as an auditor; the server's memory sampled meanwhile.
        var pages = new List<double>();
        var (before, peak, (eventsRead, paging)) = await Stats.PeakResidentBytesAsync(server.ProcessId, async () =>
        {
            long count = 0;
            string? cursor = null;
            var whole = Stopwatch.StartNew();
            do
            {
                var watch = Stopwatch.StartNew();
                var page = (await auditor.SendRawAsync(HttpMethod.Get,
                    $"/audit/users/bench-user/events?limit={PageSize}{(cursor is null ? "" : "&cursor=" + cursor)}")).AssertStatus(HttpStatusCode.OK);
                pages.Add(watch.Elapsed.TotalMilliseconds);
                count += page.Json["events"]!.AsArray().Count;
                cursor = page.Json["nextCursor"]?.GetValue<string>();
            } while (cursor is not null);
            return (count, whole.Elapsed);
        });
        if (eventsRead != events) throw new InvalidOperationException($"read {eventsRead} of {events} events");
        var rawPaging = await RawAsync(production.Database, async connection =>
        {
            long after = 0;
            while (true)
            {
                await using var next = new NpgsqlCommand(
                    $"select seq_id, data from manasync.mt_events where manasync.stream_owner(stream_id) = 'bench-user' and seq_id > $1 order by seq_id limit {PageSize}",
                    connection) { Parameters = { new NpgsqlParameter { Value = after } } };
                await using var reader = await next.ExecuteReaderAsync();
                var rows = 0;
                while (await reader.ReadAsync()) (after, rows) = (reader.GetInt64(0), rows + 1);
                if (rows < PageSize) break;
            }
        }, runs: 1);

        Console.WriteLine();
        Console.WriteLine("| measure | ManaSync | raw PostgreSQL (the same rows) | ratio |");
        Console.WriteLine("|---|---|---|---|");
        Console.WriteLine($"| a record's timeline, {HistoryLength:N0} events, p50 / max of {Runs}, ms (auditor, loopback round trip) | " +
                          $"{Stats.Percentile(timeline, 50):F1} / {timeline.Max():F1} | {Stats.Percentile(rawTimeline, 50):F1} / {rawTimeline.Max():F1} | " +
                          $"{Stats.Percentile(timeline, 50) / Stats.Percentile(rawTimeline, 50):F1}× |");
        Console.WriteLine($"| a user's {events:N0} events in pages of {PageSize:N0}, s | {paging.TotalSeconds:F1} | {rawPaging[0] / 1000:F1} | " +
                          $"{paging.TotalSeconds * 1000 / rawPaging[0]:F1}× |");
        Console.WriteLine($"| page time, first 100 pages / last 100 pages, p50 ms | {Stats.Percentile(pages[..100], 50):F1} / {Stats.Percentile(pages[^100..], 50):F1} | | |");
        Console.WriteLine($"| server memory while paging (peak RSS − before) | {(peak - before) / 1e6:F0} MB | | |");
        Console.WriteLine($"| indexing the {events:N0} stored events by record once (first start with record_events), s | {indexing[0] / 1000:F1} | | |");
    }

    private static string Iso(DateTimeOffset time) => time.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'");

    /// <summary>How long each run of a read takes on a direct connection, in ms.</summary>
    private static async Task<List<double>> RawAsync(string database, Func<NpgsqlConnection, Task> read, int runs = Runs)
    {
        await using var connection = new NpgsqlConnection(database);
        await connection.OpenAsync();
        var times = new List<double>();
        for (var run = 0; run < runs; run++)
        {
            var watch = Stopwatch.StartNew();
            await read(connection);
            times.Add(watch.Elapsed.TotalMilliseconds);
        }
        return times;
    }
}
