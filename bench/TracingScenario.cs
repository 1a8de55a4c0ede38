using ManaSync.Testing;

namespace ManaSync.Bench;

/// <summary>
/// What tracing costs a push: the push scenario's closed loop (16 devices × 50 new records) against a server with tracing
/// off (no endpoint: nothing registered) and one exporting over OTLP to a stand-in collector with 10 % of traces sampled
/// (<c>parentbased_traceidratio</c>), alternating, each on a fresh database. The machine's swings move a single
/// run's throughput by ±15 %; the server's CPU per batch moves less.
/// </summary>
public static class TracingScenario
{
    public static async Task RunAsync(string[] args)
    {
        var rounds = args.Length > 0 ? int.Parse(args[0]) : 3;
        await using var collector = await OtlpReceiver.StartAsync(keep: false);
        var results = new List<(bool Traced, double ChangesPerSecond, double P99, double CpuPerBatch, int Errors)>();
        for (var round = 0; round < rounds; round++)
            foreach (var traced in new[] { false, true })
            {
                var settings = traced
                    ? new Dictionary<string, string>
                    {
                        ["OTEL_EXPORTER_OTLP_ENDPOINT"] = collector.Url, ["OTEL_EXPORTER_OTLP_PROTOCOL"] = "http/protobuf",
                        ["OTEL_TRACES_SAMPLER"] = "parentbased_traceidratio", ["OTEL_TRACES_SAMPLER_ARG"] = "0.1",
                    }
                    : [];
                await using var server = await ProductionServer.StartAsync(settings: settings);
                var run = await PushScenario.ClosedLoopOfInsertsAsync(server);
                results.Add((traced, run.Latencies.Count * PushScenario.BatchSize / PushScenario.Measured.TotalSeconds,
                    Stats.Percentile(run.Latencies, 99), run.Cpu.Server.TotalMilliseconds / run.Latencies.Count, run.Errors));
                Console.WriteLine($"round {round + 1}, tracing {(traced ? "on" : "off")}: {results[^1].ChangesPerSecond:F0} changes/s");
            }

        Console.WriteLine();
        Console.WriteLine($"| push, {PushScenario.Users} devices × {PushScenario.BatchSize} new records, closed loop {PushScenario.Measured.TotalSeconds:F0} s | " +
                          "tracing off: changes/s (p99; server CPU per batch) | tracing on at 10 %: changes/s (p99; server CPU per batch) | on / off |");
        Console.WriteLine("|---|---|---|---|");
        for (var round = 0; round < rounds; round++)
        {
            var (off, on) = (results[2 * round], results[2 * round + 1]);
            Console.WriteLine($"| round {round + 1} | {off.ChangesPerSecond:F0} ({off.P99:F1} ms; {off.CpuPerBatch:F2} ms) | " +
                              $"{on.ChangesPerSecond:F0} ({on.P99:F1} ms; {on.CpuPerBatch:F2} ms) | {on.ChangesPerSecond / off.ChangesPerSecond:F2} |");
        }
        var (offRuns, onRuns) = (results.Where(r => !r.Traced).ToList(), results.Where(r => r.Traced).ToList());
        Console.WriteLine($"| all rounds | {offRuns.Average(r => r.ChangesPerSecond):F0} ({offRuns.Average(r => r.CpuPerBatch):F2} ms) | " +
                          $"{onRuns.Average(r => r.ChangesPerSecond):F0} ({onRuns.Average(r => r.CpuPerBatch):F2} ms) | " +
                          $"{onRuns.Average(r => r.ChangesPerSecond) / offRuns.Average(r => r.ChangesPerSecond):F2} |");
        Console.WriteLine();
        Console.WriteLine($"errors: {results.Sum(r => r.Errors)}; sent to the collector: {collector.Received.Count} requests, {collector.Bytes / 1e6:F1} MB");
    }
}
