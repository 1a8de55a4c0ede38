using System.Diagnostics;
using System.Net;
using ManaSync.Testing;

namespace ManaSync.Bench;

/// <summary>
/// Shards on one machine: the push scenario's closed loop (16 devices × 50 new records, users spread over the shards by
/// weight) with main alone (SHARDS unset), with 2 shards holding every user in one (what the sharded path costs a
/// request, the other cluster idle), and with 2 and 3 shards, each shard a PostgreSQL cluster of its own; beside it raw
/// pgbench inserts on main's cluster in the same run. Then what a second shard costs a pull: a user whose own records
/// and space live in one shard against one whose space lives in another, each with 500 records in each scope, timed for
/// a pull with nothing new (a device polling) and for a first pull of everything.
/// </summary>
public static class ShardsScenario
{
    private const int RecordsPerScope = 500, Pulls = 200;

    public static async Task RunAsync(string[] args)
    {
        var main0 = await TestCluster.CreateDatabaseAsync(0);
        var raw = await RawPostgres.InsertChangeRowsAsync(main0, PushScenario.BatchSize, PushScenario.RawClients, PushScenario.Measured);
        var rawRows = raw.TransactionsPerSecond * PushScenario.BatchSize;

        var pushes = new List<(string Setup, double ChangesPerSecond, double P50, double P99, int Errors)>();
        foreach (var (shards, setup, weights) in new[]
                 {
                     (1, "main alone (SHARDS unset)", (string?)null), (2, "2 shards, every user in s2 (main idle)", "main=0"), (2, "2 shards", null),
                     (3, "3 shards", null),
                 })
        {
            var (main, settings) = await DatabasesAsync(shards);
            if (weights is not null) settings["SHARD_WEIGHTS"] = weights;
            await using var server = await ProductionServer.StartAsync(main, settings);
            var run = await PushScenario.ClosedLoopOfInsertsAsync(server);
            pushes.Add((setup, run.Latencies.Count * PushScenario.BatchSize / PushScenario.Measured.TotalSeconds,
                Stats.Percentile(run.Latencies, 50), Stats.Percentile(run.Latencies, 99), run.Errors));
        }

        var (pullMain, pullSettings) = await DatabasesAsync(2);
        PullTimes oneShard, twoShards;
        await using (var server = await ProductionServer.StartAsync(pullMain, pullSettings))
        {
            await ShardPlacement.PlaceAsync(pullMain, ("u:near", "main"), ("s:near-team", "main"), ("u:far", "main"), ("s:far-team", "s2"));
            oneShard = await PullTimesAsync(server, "near", "near-team");
            twoShards = await PullTimesAsync(server, "far", "far-team");
        }

        Console.WriteLine();
        Console.WriteLine($"| push, {PushScenario.Users} devices × {PushScenario.BatchSize} new records, closed loop {PushScenario.Measured.TotalSeconds:F0} s " +
                          "| changes/s | / raw pgbench | / one shard | batch p50 / p99 | errors |");
        Console.WriteLine("|---|---|---|---|---|---|");
        Console.WriteLine($"| raw pgbench on main's cluster, {PushScenario.RawClients} clients, {PushScenario.BatchSize}-row INSERT | {rawRows:F0} | 1.00 | | | |");
        foreach (var push in pushes)
            Console.WriteLine($"| {push.Setup} | {push.ChangesPerSecond:F0} | " +
                              $"{push.ChangesPerSecond / rawRows:F2} | {push.ChangesPerSecond / pushes[0].ChangesPerSecond:F2} | " +
                              $"{push.P50:F1} / {push.P99:F1} ms | {push.Errors} |");
        Console.WriteLine();
        Console.WriteLine($"| pull of tasks, {RecordsPerScope} own records + {RecordsPerScope} of a space, {Pulls} pulls | scopes in one shard | space in a second shard | ratio |");
        Console.WriteLine("|---|---|---|---|");
        Console.WriteLine($"| nothing new (polling), p50 / p99 | {oneShard.EmptyP50:F2} / {oneShard.EmptyP99:F2} ms | {twoShards.EmptyP50:F2} / {twoShards.EmptyP99:F2} ms | " +
                          $"{twoShards.EmptyP50 / oneShard.EmptyP50:F2} |");
        Console.WriteLine($"| everything ({2 * RecordsPerScope} records, one page), p50 | {oneShard.FullP50:F1} ms | {twoShards.FullP50:F1} ms | " +
                          $"{twoShards.FullP50 / oneShard.FullP50:F2} |");
    }

    /// <summary>Main in cluster 0 and, beyond one shard, s2 and s3 in clusters 1 and 2.</summary>
    private static async Task<(string Main, Dictionary<string, string> Settings)> DatabasesAsync(int shards)
    {
        var main = await TestCluster.CreateDatabaseAsync(0);
        var others = new List<string>();
        for (var shard = 2; shard <= shards; shard++) others.Add($"s{shard}={await TestCluster.CreateDatabaseAsync(shard - 1)}");
        return (main, others.Count == 0 ? new Dictionary<string, string>() : new Dictionary<string, string> { ["SHARDS"] = string.Join(' ', others) });
    }


    private sealed record PullTimes(double EmptyP50, double EmptyP99, double FullP50);

    private static async Task<PullTimes> PullTimesAsync(ProductionServer server, string user, string space)
    {
        server.Services.Spaces[user] = [space];
        var writer = server.ClientFor(user, "writer");
        for (var batch = 0; batch < 2 * RecordsPerScope / 50; batch++)
        {
            var changes = Enumerable.Range(0, 50).Select(i => (object)Changes.Insert("tasks", $"{batch}-{i}",
                new { title = "Buy oat milk", spaceId = batch % 2 == 0 ? space : null })).ToArray();
            (await writer.PushAsync("todo", Changes.Batch(changes))).AssertStatus(HttpStatusCode.OK);
        }
        var reader = server.ClientFor(user, "reader");
        var (all, cursor) = await reader.PullAllAsync("todo", "tasks");
        if (all.Count != 2 * RecordsPerScope) throw new InvalidOperationException($"{user} pulled {all.Count} records");

        var empty = new List<double>();
        var full = new List<double>();
        for (var i = 0; i < Pulls; i++)
        {
            var started = Stopwatch.GetTimestamp();
            (await reader.PullAsync("todo", "tasks", cursor)).AssertStatus(HttpStatusCode.OK);
            empty.Add(Stats.Milliseconds(started, Stopwatch.GetTimestamp()));
            if (i % 10 != 0) continue;
            started = Stopwatch.GetTimestamp();
            (await reader.PullAsync("todo", "tasks")).AssertStatus(HttpStatusCode.OK);
            full.Add(Stats.Milliseconds(started, Stopwatch.GetTimestamp()));
        }
        return new PullTimes(Stats.Percentile(empty, 50), Stats.Percentile(empty, 99), Stats.Percentile(full, 50));
    }
}
