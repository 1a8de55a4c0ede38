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

    /// <summary>Each device rewrites its own fixed set of records, so the views a rebuild builds stay about the same
    /// from round to round however long the devices push (new records would grow the table with every round).</summary>
    private const int RecordsPerDevice = 5_000;

    /// <param name="args">Events (default 1,000,000), rounds (default 3), then the records they make (default a tenth of
    /// the events): a round is an export and a rebuild alone, then the devices without a rebuild for 20 s and during one.
    /// Single rounds swing with the machine: compare medians.</param>
    public static async Task RunAsync(string[] args)
    {
        var events = args.Length > 0 ? int.Parse(args[0]) : 1_000_000;
        var rounds = args.Length > 1 ? int.Parse(args[1]) : 3;
        int? records = args.Length > 2 ? int.Parse(args[2]) : null;
        await using var production = await ProductionServer.StartAsync();
        var server = production.Server;
        var token = production.ClientFor("bench-user").Token;
        await ExportScenario.LoadAsync(server.BaseAddress, token, production.Database, events, records);
        var (_, rawSeconds) = await ExportScenario.RawCopyAsync(production.Database);

        var results = new List<Round>();
        for (var round = 1; round <= rounds; round++)
        {
            var (_, export) = await ExportScenario.ExportAsync(server.BaseAddress, token);
            var quiet = await RebuildAsync(server);
            var without = await LoadAsync(production, () => Task.Delay(TimeSpan.FromSeconds(20)));
            Rebuilt? underLoad = null;
            var during = await LoadAsync(production, async () => underLoad = await RebuildAsync(server));
            results.Add(new Round(events / export.TotalSeconds, quiet, underLoad!, without, during));
        }

        Console.WriteLine();
        Console.WriteLine($"raw PostgreSQL (COPY of the {events:N0} event rows): {events / rawSeconds:N0} events/s");
        Console.WriteLine();
        Console.WriteLine($"| round | export, events/s | rebuild alone, events/s | ratio to export | rebuild under {Devices} devices, events/s | ratio |");
        Console.WriteLine("|---|---|---|---|---|---|");
        foreach (var (round, i) in results.Select((round, i) => (round, i + 1)))
            Console.WriteLine($"| {i} | {round.ExportRate:N0} | {round.Quiet.Rate:N0} | {round.Quiet.Rate / round.ExportRate:F2} | " +
                              $"{round.UnderLoad.Rate:N0} | {round.UnderLoad.Rate / round.ExportRate:F2} |");
        Console.WriteLine($"| median | | | {Median(results.Select(round => round.Quiet.Rate / round.ExportRate)):F2} | | " +
                          $"{Median(results.Select(round => round.UnderLoad.Rate / round.ExportRate)):F2} |");
        Console.WriteLine();
        Console.WriteLine($"{Devices} devices, each pushing 10 of its {RecordsPerDevice:N0} records then pulling, in a loop: " +
                          "ms without a rebuild → during one (ratio)");
        Console.WriteLine();
        Console.WriteLine("| round | push p50 | push p99 | pull p50 | pull p99 | requests (errors) | server GC pauses, share of the time |");
        Console.WriteLine("|---|---|---|---|---|---|---|");
        foreach (var (round, i) in results.Select((round, i) => (round, i + 1)))
            Console.WriteLine($"| {i} | {Change(round.Without.Push, round.During.Push, 50)} | {Change(round.Without.Push, round.During.Push, 99)} | " +
                              $"{Change(round.Without.Pull, round.During.Pull, 50)} | {Change(round.Without.Pull, round.During.Pull, 99)} | " +
                              $"{round.Without.Requests} ({round.Without.Errors}) → {round.During.Requests} ({round.During.Errors}) | " +
                              $"{round.Without.GcPauseShare:P1} → {round.During.GcPauseShare:P1} |");
        Console.WriteLine($"| median ratio | {Median(results.Select(round => Ratio(round.Without.Push, round.During.Push, 50))):F2} | " +
                          $"{Median(results.Select(round => Ratio(round.Without.Push, round.During.Push, 99))):F2} | " +
                          $"{Median(results.Select(round => Ratio(round.Without.Pull, round.During.Pull, 50))):F2} | " +
                          $"{Median(results.Select(round => Ratio(round.Without.Pull, round.During.Pull, 99))):F2} | | |");
        Console.WriteLine();
        Console.WriteLine("records changed by the rebuilds (nothing changes between them): " +
                          string.Join(", ", results.SelectMany(round => new[] { round.Quiet.Changed, round.UnderLoad.Changed })));
        foreach (var line in server.Output.Split('\n').Where(line => line.Contains("Rebuilt the record view"))) Console.WriteLine(line.Trim());
    }

    private sealed record Round(double ExportRate, Rebuilt Quiet, Rebuilt UnderLoad, Latencies Without, Latencies During);

    private static double Ratio(List<double> without, List<double> during, double percentile) =>
        Stats.Percentile(during, percentile) / Stats.Percentile(without, percentile);

    private static string Change(List<double> without, List<double> during, double percentile) =>
        $"{Stats.Percentile(without, percentile):F1} → {Stats.Percentile(during, percentile):F1} ({Ratio(without, during, percentile):F2})";

    /// <summary>The middle round's figure (of an even number, the lower middle one).</summary>
    private static double Median(IEnumerable<double> values) => Stats.Percentile(values.ToList(), 50);

    private sealed record Rebuilt(long Events, long Changed, TimeSpan Took)
    {
        public double Rate => Events / Took.TotalSeconds;
    }

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
                    // With the server's account of the failure: the statement that failed is in its stack trace.
                    throw new InvalidOperationException(string.Join('\n', server.Output.Split('\n')
                        .SkipWhile(line => !line.Contains("rebuild failed")).Take(40).Prepend(status.ToString())));
            }
        }
    }

    /// <param name="GcPauseShare">The share of the time the server's garbage collector stopped its threads.</param>
    private sealed record Latencies(List<double> Push, List<double> Pull, int Errors, double GcPauseShare)
    {
        public int Requests => Push.Count + Pull.Count;
    }

    /// <summary>Devices push 10 of their records then pull their table, in a loop, for as long as <paramref name="during"/> runs.</summary>
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
                    .Select(i => (object)Insert("tasks", $"d{device}-{(round * 10 + i) % RecordsPerDevice}", new { title = $"round {round}", i }))
                    .ToArray()));
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
        using var metrics = new HttpClient { BaseAddress = production.Server.BaseAddress };
        var (pausedBefore, watch) = (await ServerTimings.GcPauseSecondsAsync(metrics), Stopwatch.StartNew());
        await during();
        var paused = await ServerTimings.GcPauseSecondsAsync(metrics) - pausedBefore;
        var share = paused / watch.Elapsed.TotalSeconds;
        await stop.CancelAsync();
        await Task.WhenAll(devices);
        return new Latencies(push, pull, errors, share);
    }
}
