using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using ManaSync.Testing;
using static ManaSync.Testing.Changes;

namespace ManaSync.Bench;

/// <summary>
/// A long run at a fixed, moderate rate: pushes (10 updates of a user's records each) and incremental
/// pulls, with live SSE streams open throughout. Requests are sent on schedule whatever the answers
/// do, with at most <see cref="MaxOutstanding"/> under way: a request that would exceed it is counted
/// as not sent, so "load held" shows whether the server kept up. Reports per minute and in total;
/// errors must be 0 and the server's memory flat.
/// </summary>
public static class SoakScenario
{
    private const int Users = 20, StreamsPerUser = 5, RecordsPerUser = 1000, ChangesPerPush = 10, MaxOutstanding = 64;
    private const int PushesPerSecond = 20, PullsPerSecond = 20;

    private sealed class Minute
    {
        public readonly ConcurrentBag<double> Pushes = [], Pulls = [];
        public int Errors, NotSent, StreamEvents;
        public long ResidentBytes;
    }

    public static async Task RunAsync(string[] args)
    {
        var minutes = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 10;
        await using var server = await ProductionServer.StartAsync();
        var writers = Enumerable.Range(0, Users).Select(u => server.ClientFor($"soak-{u}", "writer")).ToList();
        var readers = Enumerable.Range(0, Users).Select(u => server.ClientFor($"soak-{u}", "reader")).ToList();
        var cursors = new ConcurrentDictionary<int, string>();
        var report = Enumerable.Range(0, minutes).Select(_ => new Minute()).ToList();
        var started = Stopwatch.GetTimestamp();
        Minute Current() => report[Math.Min(minutes - 1, (int)(Stopwatch.GetElapsedTime(started).TotalMinutes))];

        using var stop = new CancellationTokenSource();
        var streams = new List<SseStream>();
        for (var u = 0; u < Users; u++)
            for (var d = 0; d < StreamsPerUser; d++)
                streams.Add(await SseStream.OpenAsync(server.Server.Client, "/sync/todo/stream?collections=tasks",
                    server.ClientFor($"soak-{u}", $"screen-{d}").Token));
        var streamReaders = streams.Select(stream => Task.Run(() => ReadUntilStoppedAsync(stream, Current, stop.Token))).ToList();

        var random = new Random(7);
        var outstanding = 0;
        var inFlight = new ConcurrentDictionary<Task, bool>();
        var interval = TimeSpan.FromSeconds(1.0 / (PushesPerSecond + PullsPerSecond));
        var end = TimeSpan.FromMinutes(minutes);
        for (var tick = 0L; ; tick++)
        {
            var scheduled = started + (long)(tick * interval.TotalSeconds * Stopwatch.Frequency);
            var wait = Stats.Milliseconds(Stopwatch.GetTimestamp(), scheduled);
            if (wait > 0) await Task.Delay(TimeSpan.FromMilliseconds(wait));
            if (Stopwatch.GetElapsedTime(started) >= end) break;
            var minute = Current();
            if (Interlocked.Increment(ref outstanding) > MaxOutstanding)
            {
                Interlocked.Decrement(ref outstanding);
                Interlocked.Increment(ref minute.NotSent);
                continue;
            }
            var user = random.Next(Users);
            var isPush = tick % 2 == 0;
            var body = isPush ? PushBody(random) : null;
            var request = Task.Run(async () =>
            {
                try
                {
                    var reply = isPush
                        ? await writers[user].PushAsync("todo", body!)
                        : await readers[user].PullAsync("todo", "tasks", cursors.GetValueOrDefault(user));
                    if (reply.Status != HttpStatusCode.OK) Interlocked.Increment(ref minute.Errors);
                    else if (!isPush) cursors[user] = reply.Cursor;
                    (isPush ? minute.Pushes : minute.Pulls).Add(Stats.Milliseconds(scheduled, Stopwatch.GetTimestamp()));
                }
                catch (HttpRequestException)
                {
                    Interlocked.Increment(ref minute.Errors);
                }
                finally
                {
                    Interlocked.Decrement(ref outstanding);
                }
            });
            inFlight[request] = true;
            _ = request.ContinueWith(done => inFlight.TryRemove(done, out _), TaskScheduler.Default);
            if (tick % (PushesPerSecond + PullsPerSecond) == 0) minute.ResidentBytes = Stats.ResidentBytes(server.Server.ProcessId);
        }
        await Task.WhenAll(inFlight.Keys);
        await stop.CancelAsync();
        foreach (var stream in streams)
        {
            if (stream.Ended) Interlocked.Increment(ref report[^1].Errors);
            await stream.DisposeAsync();
        }
        await Task.WhenAll(streamReaders);
        Print(report, streams.Count);
    }

    private static object PushBody(Random random)
    {
        var at = DateTime.UtcNow.ToString("yyyy-MM-ddTHH:mm:ss.fffZ", CultureInfo.InvariantCulture);
        return Batch(Enumerable.Range(0, ChangesPerPush)
            .Select(_ => (object)Update("tasks", $"r{random.Next(RecordsPerUser)}", "title", $"soak {random.Next()}", at))
            .ToArray());
    }

    private static async Task ReadUntilStoppedAsync(SseStream stream, Func<Minute> current, CancellationToken stop)
    {
        while (!stop.IsCancellationRequested)
        {
            try
            {
                await stream.NextAsync(withinSeconds: 120);
                Interlocked.Increment(ref current().StreamEvents);
            }
            catch (Exception e) when (e is OperationCanceledException or TimeoutException or System.Threading.Channels.ChannelClosedException)
            {
                return;
            }
        }
    }

    private static void Print(List<Minute> report, int streams)
    {
        var scheduledPerMinute = 60 * (PushesPerSecond + PullsPerSecond);
        Console.WriteLine();
        Console.WriteLine($"{PushesPerSecond} pushes/s ({ChangesPerPush} updates each) and {PullsPerSecond} pulls/s across {Users} users, " +
                          $"{streams} SSE streams open throughout; latency from the scheduled send time.");
        Console.WriteLine();
        Console.WriteLine("| minute | requests answered / scheduled | not sent (over 64 outstanding) | errors | push p50 / p99 | pull p50 / p99 | stream events | server RSS |");
        Console.WriteLine("|---|---|---|---|---|---|---|---|");
        for (var i = 0; i < report.Count; i++)
        {
            var m = report[i];
            Console.WriteLine($"| {i + 1} | {m.Pushes.Count + m.Pulls.Count} / {scheduledPerMinute} | {m.NotSent} | {m.Errors} | " +
                              $"{Stats.Percentile([.. m.Pushes], 50):F1} / {Stats.Percentile([.. m.Pushes], 99):F1} ms | " +
                              $"{Stats.Percentile([.. m.Pulls], 50):F1} / {Stats.Percentile([.. m.Pulls], 99):F1} ms | " +
                              $"{m.StreamEvents} | {m.ResidentBytes / 1e6:F0} MB |");
        }
        var pushes = report.SelectMany(m => m.Pushes).ToList();
        var pulls = report.SelectMany(m => m.Pulls).ToList();
        Console.WriteLine();
        Console.WriteLine($"total: {pushes.Count + pulls.Count} of {scheduledPerMinute * report.Count} scheduled requests answered, " +
                          $"{report.Sum(m => m.NotSent)} not sent, {report.Sum(m => m.Errors)} errors; push p99 {Stats.Percentile(pushes, 99):F1} ms, " +
                          $"pull p99 {Stats.Percentile(pulls, 99):F1} ms; server RSS {report[0].ResidentBytes / 1e6:F0} MB after the first minute, " +
                          $"{report[^1].ResidentBytes / 1e6:F0} MB after the last");
    }
}
