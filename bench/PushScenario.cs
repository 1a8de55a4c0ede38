using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Text;
using System.Text.Json;
using ManaSync.Testing;
using Npgsql;

namespace ManaSync.Bench;

/// <summary>
/// Push throughput and latency: 16 users, each one device pushing batches of 50 changes in a closed
/// loop, then the same load offered at a fixed rate of half the measured throughput. Beside it, in
/// the same run, pgbench inserting the same change rows 50 to a transaction with 4 clients, and the
/// same changes stored by hand-written SQL in ManaSync's schema (the floor any server on it has).
/// <c>push</c> inserts new records; <c>push-updates</c> updates the same 50 records of each user over
/// and over (the read-modify-write path of the record view). An optional second argument stores that
/// many changes (new records of the same users) before the warm-up, to see how cost grows with history.
/// </summary>
public static class PushScenario
{
    internal const int Users = 16, BatchSize = 50, RawClients = 4;
    internal static readonly TimeSpan WarmUp = TimeSpan.FromSeconds(60), Measured = TimeSpan.FromSeconds(30);

    public static Task RunInsertsAsync(string[] args) => RunAsync(updates: false, BatchSizeFrom(args), HistoryFrom(args));

    public static Task RunUpdatesAsync(string[] args) => RunAsync(updates: true, BatchSizeFrom(args), HistoryFrom(args));

    private static int BatchSizeFrom(string[] args) => args.Length > 0 ? int.Parse(args[0]) : BatchSize;

    private static long HistoryFrom(string[] args) => args.Length > 1 ? long.Parse(args[1]) : 0;

    /// <summary>Changes acknowledged so far in this run: the length of the event log.</summary>
    private static long _acknowledged;

    private static async Task RunAsync(bool updates, int batchSize, long history)
    {
        var database = await TestCluster.CreateDatabaseAsync();
        var raw = await RawPostgres.InsertChangeRowsAsync(database, batchSize, RawClients, Measured);
        var rawRowsPerSecond = raw.TransactionsPerSecond * batchSize;
        var floorChangesPerSecond = await SqlFloorAsync(database, updates, batchSize);

        var tcpBefore = TcpCounters.Read();
        var server = await ProductionServer.StartAsync(database);
        var devices = Enumerable.Range(0, Users).Select(u => new Device(server.ClientFor($"user-{u}", $"device-{u}"), u, batchSize)).ToList();
        var historyTook = Stopwatch.StartNew();
        // A device that fails stops storing (its failures are reported below); the others carry on.
        await Task.WhenAll(devices.Select(device => Task.Run(async () =>
        {
            while (Interlocked.Read(ref _acknowledged) < history && await device.PushAsync(device.NextBatch(updates: false)))
            {
            }
        })));
        historyTook.Stop();
        if (updates)
            foreach (var device in devices) await device.PushAsync(device.NextBatch(updates: false));

        var closed = await ClosedLoopAsync(devices.Count, device => devices[device].PushAsync(devices[device].NextBatch(updates)),
            () => CpuUse.Now(server.Server.ProcessId));
        var changesPerSecond = closed.Latencies.Count * batchSize / Measured.TotalSeconds;
        var batchesPerSecond = closed.Latencies.Count / Measured.TotalSeconds;
        var serverBefore = await ServerTimings.ReadAsync(server.Server.Client);
        var fixedRate = await FixedRateAsync(devices, updates, batchesPerSecond / 2);
        var serverAfter = await ServerTimings.ReadAsync(server.Server.Client);
        var tcp = TcpCounters.Read() - tcpBefore;
        var serverErrors = server.Server.Output.Split('\n').Where(line => line.Contains("\"LogLevel\":\"Error\"")).Take(3).ToList();
        await server.DisposeAsync();
        var peer = updates ? null : await PouchDbAsync(batchSize);

        var what = updates ? "updates of existing records" : "inserts of new records";
        Console.WriteLine();
        Console.WriteLine($"| push, {Users} users × batches of {batchSize} {what} | ManaSync | raw PostgreSQL (pgbench, {RawClients} clients, {batchSize}-row INSERT) | ratio |");
        Console.WriteLine("|---|---|---|---|");
        Console.WriteLine($"| changes/s, closed loop {Measured.TotalSeconds:F0} s | {changesPerSecond:F0} | {rawRowsPerSecond:F0} | {changesPerSecond / rawRowsPerSecond:F2} |");
        Console.WriteLine($"| changes/s of the SQL floor: the same events and record views written set-based by hand, {RawClients} clients, no server | " +
                          $"{floorChangesPerSecond:F0} | {rawRowsPerSecond:F0} | {floorChangesPerSecond / rawRowsPerSecond:F2} |");
        Console.WriteLine($"| ManaSync / SQL floor | {changesPerSecond / floorChangesPerSecond:F2} | | |");
        Console.WriteLine($"| batch latency p50 / p99 / p99.9 | {Stats.Percentile(closed.Latencies, 50):F1} / {Stats.Percentile(closed.Latencies, 99):F1} / " +
                          $"{Stats.Percentile(closed.Latencies, 99.9):F1} ms | {raw.AverageLatencyMs:F1} ms (average) | |");
        Console.WriteLine($"| errors | {closed.Errors} | | |");
        Console.WriteLine($"| events stored when the measurement began (history: {history:N0} before a {WarmUp.TotalSeconds:F0} s warm-up, " +
                          $"stored in {historyTook.Elapsed.TotalSeconds:F0} s) | {closed.EventsBefore:N0} | | |");
        Console.WriteLine($"| CPU per batch, closed loop: server / PostgreSQL | {closed.Cpu.Server.TotalMilliseconds / closed.Latencies.Count:F1} / " +
                          $"{closed.Cpu.Postgres.TotalMilliseconds / closed.Latencies.Count:F1} ms | | |");
        Console.WriteLine($"| fixed rate {fixedRate.Rate:F1} batches/s ({fixedRate.Rate * batchSize:F0} changes/s) for {Measured.TotalSeconds:F0} s: " +
                          $"p50 / p99 from scheduled send | {Stats.Percentile(fixedRate.Latencies, 50):F1} / {Stats.Percentile(fixedRate.Latencies, 99):F1} ms | | |");
        Console.WriteLine($"| fixed rate: sent / errors | {fixedRate.Latencies.Count} / {fixedRate.Errors} | | |");
        Console.WriteLine($"| fixed rate, inside the server (its histogram): p50 / p99 at most | {ServerTimings.PercentileBucketMs(serverBefore, serverAfter, 50):F0} / " +
                          $"{ServerTimings.PercentileBucketMs(serverBefore, serverAfter, 99):F0} ms | | |");
        Console.WriteLine($"| fixed rate, sends late on schedule: p50 / p99 | {Stats.Percentile(fixedRate.SendLag!, 50):F1} / {Stats.Percentile(fixedRate.SendLag!, 99):F1} ms | | |");
        Console.WriteLine($"| TCP during both phases (all traffic is loopback) | {tcp} | | |");
        if (peer is not null)
        {
            var peerChangesPerSecond = peer.Latencies.Count * batchSize / Measured.TotalSeconds;
            Console.WriteLine();
            Console.WriteLine($"| the same {Users} devices × batches of {batchSize} new records, closed loop {Measured.TotalSeconds:F0} s | ManaSync push | " +
                              $"pouchdb-server {PouchDbServer.Version} `_bulk_docs` | ManaSync / pouchdb-server |");
            Console.WriteLine("|---|---|---|---|");
            Console.WriteLine($"| changes/s | {changesPerSecond:F0} | {peerChangesPerSecond:F0} | {changesPerSecond / peerChangesPerSecond:F2} |");
            Console.WriteLine($"| batch latency p50 / p99 | {Stats.Percentile(closed.Latencies, 50):F1} / {Stats.Percentile(closed.Latencies, 99):F1} ms | " +
                              $"{Stats.Percentile(peer.Latencies, 50):F1} / {Stats.Percentile(peer.Latencies, 99):F1} ms | |");
            Console.WriteLine($"| CPU per batch: server (+ PostgreSQL) | {closed.Cpu.Server.TotalMilliseconds / closed.Latencies.Count:F1} " +
                              $"(+ {closed.Cpu.Postgres.TotalMilliseconds / closed.Latencies.Count:F1}) ms | {peer.Cpu.Server.TotalMilliseconds / peer.Latencies.Count:F1} ms | |");
            Console.WriteLine($"| errors | {closed.Errors} | {peer.Errors} | |");
        }
        if (Failures.IsEmpty) return;
        // A failed push is a finding, not noise: say what the client got and what the server logged.
        Console.WriteLine();
        Console.WriteLine("Failed pushes by answer: " + string.Join(", ", Failures.Select(failure => $"{failure.Key} × {failure.Value}")));
        foreach (var line in serverErrors)
            Console.WriteLine("  server: " + line[..Math.Min(line.Length, 400)]);
    }

    private static readonly ConcurrentDictionary<string, int> Failures = new();

    /// <summary>
    /// The same load on pouchdb-server, after ManaSync's server has stopped: each device its own database (as
    /// PouchDB clients replicate one), the same documents, the same warm-up and measurement.
    /// </summary>
    private static async Task<Run> PouchDbAsync(int batchSize)
    {
        await using var pouch = await PouchDbServer.StartAsync();
        var next = new int[Users];
        for (var u = 0; u < Users; u++) await pouch.CreateDatabaseAsync($"device-{u}");
        return await ClosedLoopAsync(Users, device => pouch.BulkDocsAsync($"device-{device}", Documents(device, batchSize, next)),
            () => new CpuUse(pouch.Cpu, TimeSpan.Zero));
    }

    /// <summary>A batch of new documents, as ManaSync's inserts carry them.</summary>
    private static string Documents(int user, int batchSize, int[] next)
    {
        var docs = new StringBuilder("[");
        for (var i = 0; i < batchSize; i++)
        {
            var n = Interlocked.Increment(ref next[user]);
            if (i > 0) docs.Append(',');
            docs.Append($$"""{"_id":"u{{user}}-r{{n}}","title":"Buy oat milk {{n}}","done":false,"order":{{n}},"note":"Two litres, the barista kind"}""");
        }
        return docs.Append(']').ToString();
    }

    /// <summary>
    /// What PostgreSQL alone needs to store the same changes in ManaSync's schema, on a database of its
    /// own (the server starts once to create the schema and row security, then stops), so that the
    /// ratio to raw PostgreSQL shows how much of the gap the data model itself sets. The database is
    /// dropped afterwards, so that vacuuming it does not run beside the server's measurement.
    /// </summary>
    private static async Task<double> SqlFloorAsync(string otherDatabase, bool updates, int batchSize)
    {
        var database = await TestCluster.CreateDatabaseAsync();
        await (await ProductionServer.StartAsync(database)).DisposeAsync();
        var floor = await RawPostgres.StoreChangesFloorAsync(database, batchSize, updates, RawClients, Measured);
        await RawPostgres.ExecuteAsync(otherDatabase, $"drop database {new NpgsqlConnectionStringBuilder(database).Database} with (force)");
        await RawPostgres.ExecuteAsync(otherDatabase, "checkpoint");
        return floor.TransactionsPerSecond * batchSize;
    }

    /// <param name="SendLag">How late the fixed-rate sender sent each batch: the client's own delay.</param>
    internal sealed record Run(List<double> Latencies, int Errors, double Rate = 0, CpuUse Cpu = default, List<double>? SendLag = null,
        long EventsBefore = 0);

    /// <summary>
    /// The closed loop of new records on a started server: <see cref="Users"/> devices of users of their own, batches of
    /// <see cref="BatchSize"/>, the server's CPU measured (what the shards, replication and tracing scenarios compare).
    /// </summary>
    internal static Task<Run> ClosedLoopOfInsertsAsync(ProductionServer server)
    {
        var devices = Enumerable.Range(0, Users).Select(u => new Device(server.ClientFor($"user-{u}", $"device-{u}"), u, BatchSize)).ToList();
        return ClosedLoopAsync(devices.Count, device => devices[device].PushAsync(devices[device].NextBatch(updates: false)),
            () => CpuUse.Now(server.Server.ProcessId));
    }

    /// <param name="send">Sends the next batch of a device (by number); false when it was refused.</param>
    /// <param name="cpuNow">The CPU time the servers measured have used so far.</param>
    internal static async Task<Run> ClosedLoopAsync(int devices, Func<int, Task<bool>> send, Func<CpuUse> cpuNow)
    {
        var latencies = new ConcurrentBag<double>();
        var errors = 0;
        var start = Stopwatch.GetTimestamp();
        var measureFrom = start + (long)(WarmUp.TotalSeconds * Stopwatch.Frequency);
        var measureUntil = measureFrom + (long)(Measured.TotalSeconds * Stopwatch.Frequency);
        var cpu = Task.Run(async () =>
        {
            await Task.Delay(WarmUp);
            var (before, events) = (cpuNow(), Interlocked.Read(ref _acknowledged));
            await Task.Delay(Measured);
            return (Use: cpuNow() - before, EventsBefore: events);
        });
        await Task.WhenAll(Enumerable.Range(0, devices).Select(device => Task.Run(async () =>
        {
            while (Stopwatch.GetTimestamp() < measureUntil)
            {
                var sent = Stopwatch.GetTimestamp();
                var ok = await send(device);
                var done = Stopwatch.GetTimestamp();
                if (sent < measureFrom || done > measureUntil) continue;
                if (ok) latencies.Add(Stats.Milliseconds(sent, done));
                else Interlocked.Increment(ref errors);
            }
        })));
        var (use, eventsBefore) = await cpu;
        return new Run(latencies.ToList(), errors, Cpu: use, EventsBefore: eventsBefore);
    }

    /// <summary>Sends on a fixed schedule whatever the replies; latency counts from the scheduled time (no coordinated omission).</summary>
    private static async Task<Run> FixedRateAsync(List<Device> devices, bool updates, double batchesPerSecond)
    {
        var latencies = new ConcurrentBag<double>();
        var sendLag = new ConcurrentBag<double>();
        var errors = 0;
        var count = (int)(batchesPerSecond * Measured.TotalSeconds);
        var start = Stopwatch.GetTimestamp();
        var inFlight = new List<Task>(count);
        for (var i = 0; i < count; i++)
        {
            var scheduled = start + (long)(i / batchesPerSecond * Stopwatch.Frequency);
            var wait = Stats.Milliseconds(Stopwatch.GetTimestamp(), scheduled);
            if (wait > 1) await Task.Delay(TimeSpan.FromMilliseconds(wait));
            var device = devices[i % devices.Count];
            var batch = device.NextBatch(updates);
            inFlight.Add(Task.Run(async () =>
            {
                sendLag.Add(Stats.Milliseconds(scheduled, Stopwatch.GetTimestamp()));
                var ok = await device.PushAsync(batch);
                if (ok) latencies.Add(Stats.Milliseconds(scheduled, Stopwatch.GetTimestamp()));
                else Interlocked.Increment(ref errors);
            }));
        }
        await Task.WhenAll(inFlight);
        return new Run(latencies.ToList(), errors, batchesPerSecond, SendLag: sendLag.ToList());
    }

    /// <summary>One device of one user: makes its batches and keeps its cursor, as a client does.</summary>
    internal sealed class Device(SyncClient client, int user, int batchSize)
    {
        private int _next;
        private string? _cursor;

        public byte[] NextBatch(bool updates)
        {
            var body = new StringBuilder("{");
            if (Volatile.Read(ref _cursor) is { } cursor) body.Append("\"since\":\"").Append(cursor).Append("\",");
            body.Append("\"changes\":[");
            var now = DateTime.UtcNow.ToString("yyyy-MM-ddTHH:mm:ss.fffZ");
            for (var i = 0; i < batchSize; i++)
            {
                var n = Interlocked.Increment(ref _next);
                if (i > 0) body.Append(',');
                if (updates)
                    body.Append($$$$"""{"table":"tasks","id":"u{{{{user}}}}-r{{{{i}}}}","op":"update","fields":{"title":{"value":"Buy oat milk {{{{n}}}}","updatedAt":"{{{{now}}}}"},"done":{"value":{{{{(n % 2 == 0 ? "true" : "false")}}}},"updatedAt":"{{{{now}}}}"}}}""");
                else
                    body.Append($$$"""{"table":"tasks","id":"u{{{user}}}-r{{{n}}}","op":"insert","data":{"title":"Buy oat milk {{{n}}}","done":false,"order":{{{n}}},"note":"Two litres, the barista kind"}}""");
            }
            return Encoding.UTF8.GetBytes(body.Append("]}").ToString());
        }

        public async Task<bool> PushAsync(byte[] batch)
        {
            try
            {
                var reply = await client.PushRawAsync("todo", batch);
                if (reply.Status != HttpStatusCode.OK)
                {
                    Failures.AddOrUpdate(((int)reply.Status).ToString(), 1, (_, count) => count + 1);
                    return false;
                }
                Interlocked.Add(ref _acknowledged, batchSize);
                using var json = JsonDocument.Parse(reply.Text);
                Volatile.Write(ref _cursor, json.RootElement.GetProperty("syncedUntil").GetString());
                return true;
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
                Failures.AddOrUpdate(e.GetType().Name, 1, (_, count) => count + 1);
                return false;
            }
        }
    }
}
