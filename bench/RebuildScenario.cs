using System.Diagnostics;
using System.Net;
using System.Text.Json;
using ManaSync.Testing;
using static ManaSync.Testing.Changes;

namespace ManaSync.Bench;

/// <summary>
/// The online rebuild of the record view (PROTOCOL §12): its rate beside export of the same events and raw PostgreSQL
/// reading them (COPY), and what a rebuild costs devices pushing and pulling meanwhile (p99 with and without one).
/// </summary>
public static class RebuildScenario
{
    private const int Devices = 4;

    public static async Task RunAsync(string[] args)
    {
        var events = args.Length > 0 ? int.Parse(args[0]) : 1_000_000;
        await using var production = await ProductionServer.StartAsync();
        var server = production.Server;
        var token = production.ClientFor("bench-user").Token;
        await ExportScenario.LoadAsync(server.BaseAddress, token, production.Database, events);

        var (_, rawSeconds) = await ExportScenario.RawCopyAsync(production.Database);
        var (_, export) = await ExportScenario.ExportAsync(server.BaseAddress, token);
        var quiet = await RebuildAsync(server);
        var exportRate = events / export.TotalSeconds;
        var rebuildRate = quiet.Events / quiet.Took.TotalSeconds;

        var without = await LoadAsync(production, () => Task.Delay(TimeSpan.FromSeconds(20)));
        Rebuilt? underLoad = null;
        var during = await LoadAsync(production, async () => underLoad = await RebuildAsync(server));

        Console.WriteLine();
        Console.WriteLine($"| {events:N0} events | events/s | ratio to export |");
        Console.WriteLine("|---|---|---|");
        Console.WriteLine($"| raw PostgreSQL (COPY of the event rows) | {events / rawSeconds:N0} | {export.TotalSeconds / rawSeconds:F2} |");
        Console.WriteLine($"| export (`GET /backup/export`) | {exportRate:N0} | 1.00 |");
        Console.WriteLine($"| rebuild, nothing else running | {rebuildRate:N0} | {rebuildRate / exportRate:F2} |");
        Console.WriteLine($"| rebuild under {Devices} devices pushing and pulling | {underLoad!.Events / underLoad.Took.TotalSeconds:N0} | " +
                          $"{underLoad.Events / underLoad.Took.TotalSeconds / exportRate:F2} |");
        Console.WriteLine();
        Console.WriteLine($"| {Devices} devices, each pushing 10 records then pulling, in a loop | without a rebuild | during a rebuild | ratio |");
        Console.WriteLine("|---|---|---|---|");
        foreach (var (name, a, b) in new[] { ("push", without.Push, during.Push), ("pull", without.Pull, during.Pull) })
        {
            Console.WriteLine($"| {name} p50, ms | {Stats.Percentile(a, 50):F1} | {Stats.Percentile(b, 50):F1} | {Stats.Percentile(b, 50) / Stats.Percentile(a, 50):F2} |");
            Console.WriteLine($"| {name} p99, ms | {Stats.Percentile(a, 99):F1} | {Stats.Percentile(b, 99):F1} | {Stats.Percentile(b, 99) / Stats.Percentile(a, 99):F2} |");
        }
        Console.WriteLine($"| requests (errors) | {without.Push.Count + without.Pull.Count} ({without.Errors}) | {during.Push.Count + during.Pull.Count} ({during.Errors}) | |");
        Console.WriteLine();
        Console.WriteLine($"records changed by the rebuilds: {quiet.Changed:N0} (nothing changed in between), {underLoad.Changed:N0}");
        foreach (var line in server.Output.Split('\n').Where(line => line.Contains("Rebuilt the record view"))) Console.WriteLine(line.Trim());
    }

    private sealed record Rebuilt(long Events, long Changed, TimeSpan Took);

    /// <summary>Starts a rebuild through the admin endpoint and waits for its switch.</summary>
    private static async Task<Rebuilt> RebuildAsync(ServerProcess server)
    {
        using var http = new HttpClient { BaseAddress = server.BaseAddress };
        http.DefaultRequestHeaders.Add("X-Service-Key", "dev-service-key");
        var watch = Stopwatch.StartNew();
        using (var start = await http.PostAsync("/admin/projections/rebuild", null))
            if (start.StatusCode != HttpStatusCode.Accepted) throw new InvalidOperationException(await start.Content.ReadAsStringAsync());
        while (true)
        {
            await Task.Delay(100);
            var status = JsonDocument.Parse(await http.GetStringAsync("/admin/projections/rebuild")).RootElement;
            switch (status.GetProperty("state").GetString())
            {
                case "switched":
                    return new Rebuilt(status.GetProperty("eventsDone").GetInt64(), status.GetProperty("changedRecords").GetInt64(), watch.Elapsed);
                case "failed" or "idle":
                    throw new InvalidOperationException(status.ToString());
            }
        }
    }

    private sealed record Latencies(List<double> Push, List<double> Pull, int Errors);

    /// <summary>Devices push 10 new records then pull their table, in a loop, for as long as <paramref name="during"/> runs.</summary>
    private static async Task<Latencies> LoadAsync(ProductionServer production, Func<Task> during)
    {
        var (push, pull, errors) = (new List<double>(), new List<double>(), 0);
        using var stop = new CancellationTokenSource();
        var devices = Enumerable.Range(0, Devices).Select(device => Task.Run(async () =>
        {
            var client = production.ClientFor($"device-user-{device}", $"device-{device}");
            var cursor = "";
            for (var round = 0; !stop.IsCancellationRequested; round++)
            {
                var started = Stopwatch.GetTimestamp();
                var pushed = await client.PushAsync("todo", Batch(Enumerable.Range(0, 10)
                    .Select(i => (object)Insert("tasks", $"d{device}-{Guid.NewGuid():N}", new { title = $"round {round}", i })).ToArray()));
                var between = Stopwatch.GetTimestamp();
                var pulled = await client.PullAsync("todo", "tasks", cursor);
                var ended = Stopwatch.GetTimestamp();
                lock (push)
                {
                    push.Add(Stats.Milliseconds(started, between));
                    pull.Add(Stats.Milliseconds(between, ended));
                    if (pushed.Status != HttpStatusCode.OK || pulled.Status != HttpStatusCode.OK) errors++;
                }
                if (pulled.Status == HttpStatusCode.OK) cursor = pulled.Cursor;
            }
        })).ToList();
        await during();
        await stop.CancelAsync();
        await Task.WhenAll(devices);
        return new Latencies(push, pull, errors);
    }
}
