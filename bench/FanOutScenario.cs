using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using ManaSync.Testing;
using Npgsql;
using static ManaSync.Testing.Changes;

namespace ManaSync.Bench;

/// <summary>
/// Push-to-SSE delivery latency with 1,000 open streams (100 users × 10 devices), and memory per idle
/// stream, beside the raw PostgreSQL figure it rests on: LISTEN/NOTIFY delivery latency.
/// </summary>
public static class FanOutScenario
{
    private const int Users = 100, DevicesPerUser = 10, Pushes = 300, WarmUpPushes = 1200;
    private static readonly TimeSpan PushInterval = TimeSpan.FromMilliseconds(50);
    private static readonly TimeSpan IdleWindow = TimeSpan.FromSeconds(60);

    public static async Task RunAsync()
    {
        var database = await TestCluster.CreateDatabaseAsync();
        var raw = await NotifyLatencyAsync(database);

        await using var services = await FakeManaServices.StartAsync();
        await using var server = await ServerProcess.StartAsync(database,
            new Dictionary<string, string> { ["MANA_AUTH_URL"] = services.Url, ["MANA_CREDITS_URL"] = services.Url });
        var clients = new List<(string User, SyncClient Client, string Token)>();
        for (var u = 0; u < Users; u++)
        {
            var client = await server.ClientForAsync($"bench-{u}", "writer");
            clients.Add(($"bench-{u}", client, client.Token));
        }

        // Warm up the code paths, then measure the server before and after opening the streams.
        await using (var warm = await SseStream.OpenAsync(server.Client, "/sync/todo/stream?collections=tasks", clients[0].Token))
        {
            (await clients[0].Client.PushAsync("todo", Batch(Insert("tasks", "warm-up", new { })))).AssertStatus(HttpStatusCode.OK);
            await warm.NextAsync();
        }
        await Task.Delay(TimeSpan.FromSeconds(2));
        var before = Stats.ResidentBytes(server.ProcessId);

        var sent = new ConcurrentDictionary<string, long>();
        var latencies = new ConcurrentBag<double>();
        var warmUpLatencies = new ConcurrentBag<double>();
        var tcpBefore = TcpCounters.Read();
        var streams = new List<SseStream>();
        for (var u = 0; u < Users; u++)
            for (var d = 0; d < DevicesPerUser; d++)
                streams.Add(await SseStream.OpenAsync(server.Client, "/sync/todo/stream?collections=tasks", clients[u].Token));
        await Task.Delay(TimeSpan.FromSeconds(5));
        var after = Stats.ResidentBytes(server.ProcessId);

        using var stop = new CancellationTokenSource();
        var readers = streams.Select(stream => Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                SseEvent next;
                try
                {
                    next = await stream.NextAsync(withinSeconds: 60);
                }
                catch (Exception e) when (e is OperationCanceledException or System.Threading.Channels.ChannelClosedException)
                {
                    return;
                }
                var received = Stopwatch.GetTimestamp();
                foreach (var change in next.Json["changes"]!.AsArray())
                {
                    var id = change!["id"]!.GetValue<string>();
                    if (sent.TryGetValue(id, out var at))
                        (id.StartsWith('w') ? warmUpLatencies : latencies).Add(Stats.Milliseconds(at, received));
                }
            }
        })).ToList();

        var random = new Random(42);
        for (var i = -WarmUpPushes; i < Pushes; i++)
        {
            var (_, client, _) = clients[random.Next(Users)];
            var id = i < 0 ? $"w{-i}" : $"p{i}";
            sent[id] = Stopwatch.GetTimestamp();
            _ = client.PushAsync("todo", Batch(Insert("tasks", id, new { i })));
            await Task.Delay(PushInterval);
        }
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (latencies.Count < Pushes * DevicesPerUser && DateTime.UtcNow < deadline) await Task.Delay(100);
        // What the open streams cost, warm, while nothing is pushed: heartbeats and safety-net rereads.
        var idleFrom = CpuUse.Now(server.ProcessId);
        await Task.Delay(IdleWindow);
        var idle = CpuUse.Now(server.ProcessId) - idleFrom;
        await stop.CancelAsync();
        var tcp = TcpCounters.Read() - tcpBefore;
        foreach (var stream in streams) await stream.DisposeAsync();
        await Task.WhenAll(readers);

        var samples = latencies.ToList();
        var p50 = Stats.Percentile(samples, 50);
        var p99 = Stats.Percentile(samples, 99);
        Console.WriteLine();
        Console.WriteLine("| measure | ManaSync | raw PostgreSQL (NOTIFY→LISTEN) | ratio |");
        Console.WriteLine("|---|---|---|---|");
        Console.WriteLine($"| delivery p50 | {p50:F1} ms | {raw.P50:F2} ms | {p50 / raw.P50:F0}× |");
        Console.WriteLine($"| delivery p99 | {p99:F1} ms | {raw.P99:F2} ms | {p99 / raw.P99:F0}× |");
        Console.WriteLine($"| delivered | {samples.Count} of {Pushes * DevicesPerUser} | {raw.Count} of {raw.Count} | |");
        Console.WriteLine($"| warm-up (first {WarmUpPushes} pushes, not counted above): delivery p50 / p99 | " +
                          $"{Stats.Percentile(warmUpLatencies.ToList(), 50):F1} / {Stats.Percentile(warmUpLatencies.ToList(), 99):F1} ms | | |");
        Console.WriteLine($"| TCP while the streams were open | {tcp} | | |");
        Console.WriteLine($"| CPU of {streams.Count} idle streams over {IdleWindow.TotalSeconds:F0} s: server / PostgreSQL | " +
                          $"{idle.Server.TotalSeconds / IdleWindow.TotalSeconds:P1} / {idle.Postgres.TotalSeconds / IdleWindow.TotalSeconds:P1} of a core | | |");
        Console.WriteLine($"| memory per idle stream | {(after - before) / (double)streams.Count / 1024:F1} KiB | | |");
        Console.WriteLine();
        Console.WriteLine($"{streams.Count} streams ({Users} users × {DevicesPerUser}), {Pushes} pushes of one change (after {WarmUpPushes} " +
                          $"to warm up), one every " +
                          $"{PushInterval.TotalMilliseconds} ms by a random user; latency from push sent to event read by each stream; " +
                          $"then {IdleWindow.TotalSeconds:F0} s without pushes.");
    }

    private sealed record Latency(double P50, double P99, int Count);

    /// <summary>The physical floor under the fan-out: one NOTIFY to one LISTEN connection.</summary>
    private static async Task<Latency> NotifyLatencyAsync(string connectionString)
    {
        const int count = 300;
        var samples = new ConcurrentBag<double>();
        await using var listener = new NpgsqlConnection(connectionString);
        await listener.OpenAsync();
        listener.Notification += (_, n) => samples.Add(Stats.Milliseconds(long.Parse(n.Payload), Stopwatch.GetTimestamp()));
        await using (var listen = new NpgsqlCommand("listen bench", listener)) await listen.ExecuteNonQueryAsync();
        using var stop = new CancellationTokenSource();
        var waiting = Task.Run(async () =>
        {
            try
            {
                while (true) await listener.WaitAsync(stop.Token);
            }
            catch (OperationCanceledException)
            {
            }
        });

        await using var sender = new NpgsqlConnection(connectionString);
        await sender.OpenAsync();
        for (var i = 0; i < count; i++)
        {
            await using var notify = new NpgsqlCommand("select pg_notify('bench', @at)", sender);
            notify.Parameters.AddWithValue("at", Stopwatch.GetTimestamp().ToString());
            await notify.ExecuteNonQueryAsync();
            await Task.Delay(10);
        }
        await Task.Delay(500);
        await stop.CancelAsync();
        await waiting;
        var list = samples.ToList();
        return new Latency(Stats.Percentile(list, 50), Stats.Percentile(list, 99), list.Count);
    }
}
