using ManaSync.Testing;
using ManaSync.Web.Infrastructure;

namespace ManaSync.Bench;

/// <summary>
/// What a synchronous standby costs a push: the push scenario's closed loop (16 devices × 50 new records) on one
/// durable PostgreSQL, then on a pg_auto_failover formation (primary + synchronous standby, both durable, same
/// machine), each beside raw pgbench inserts on the same cluster, so each ratio is to its own raw speed.
/// </summary>
public static class ReplicationScenario
{
    public static async Task RunAsync(string[] args)
    {
        Measurement single, replicated;
        await using (var cluster = await EmbeddedPostgres.StartThrowawayAsync(durable: true))
            single = await MeasureAsync(cluster.ConnectionString, cluster.ConnectionString);
        await using (var formation = await Formation.StartAsync())
            replicated = await MeasureAsync(formation.ConnectionStringTo(await formation.PrimaryAsync()), formation.DatabaseUrl);

        Console.WriteLine();
        Console.WriteLine($"| push, {PushScenario.Users} devices × {PushScenario.BatchSize} new records, closed loop " +
                          $"{PushScenario.Measured.TotalSeconds:F0} s | one durable PostgreSQL | primary + synchronous standby | ratio |");
        Console.WriteLine("|---|---|---|---|");
        Console.WriteLine($"| raw pgbench, {PushScenario.RawClients} clients, {PushScenario.BatchSize}-row INSERT: rows/s | " +
                          $"{single.RawRowsPerSecond:F0} | {replicated.RawRowsPerSecond:F0} | {replicated.RawRowsPerSecond / single.RawRowsPerSecond:F2} |");
        Console.WriteLine($"| ManaSync changes/s | {single.ChangesPerSecond:F0} | {replicated.ChangesPerSecond:F0} | " +
                          $"{replicated.ChangesPerSecond / single.ChangesPerSecond:F2} |");
        Console.WriteLine($"| ManaSync / raw | {single.ChangesPerSecond / single.RawRowsPerSecond:F2} | " +
                          $"{replicated.ChangesPerSecond / replicated.RawRowsPerSecond:F2} | |");
        Console.WriteLine($"| batch latency p50 / p99 | {single.P50:F1} / {single.P99:F1} ms | {replicated.P50:F1} / {replicated.P99:F1} ms | |");
        Console.WriteLine($"| errors | {single.Errors} | {replicated.Errors} | |");
    }

    private sealed record Measurement(double RawRowsPerSecond, double ChangesPerSecond, double P50, double P99, int Errors);

    /// <param name="primary">The primary itself, for pgbench.</param>
    /// <param name="databaseUrl">What the server is given.</param>
    private static async Task<Measurement> MeasureAsync(string primary, string databaseUrl)
    {
        var raw = await RawPostgres.InsertChangeRowsAsync(primary, PushScenario.BatchSize, PushScenario.RawClients, PushScenario.Measured);
        await using var server = await ProductionServer.StartAsync(databaseUrl);
        var run = await PushScenario.ClosedLoopOfInsertsAsync(server);
        return new Measurement(raw.TransactionsPerSecond * PushScenario.BatchSize,
            run.Latencies.Count * PushScenario.BatchSize / PushScenario.Measured.TotalSeconds,
            Stats.Percentile(run.Latencies, 50), Stats.Percentile(run.Latencies, 99), run.Errors);
    }
}
