using System.Diagnostics;
using ManaSync.Events;
using ManaSync.Projections.Records;
using Weasel.Core;
using SystemTextJsonSerializer = Marten.Services.SystemTextJsonSerializer;

namespace ManaSync.Bench;

/// <summary>
/// What a rebuild's own work costs the garbage collector, without PostgreSQL: the rebuild scenario's events (as the
/// export loads them), stored as Marten stores them, read back with Marten's serializer and merged into views held in
/// memory, in pages of 10,000, as <c>ViewBuild</c> does. Reports time, bytes allocated per event by each step, and the
/// collections' pauses (which stop request threads too); reading alone is the baseline the merge is compared with.
/// </summary>
public static class MergeScenario
{
    private const int PageSize = 10_000;

    public static async Task RunAsync(string[] args)
    {
        var count = args.Length > 0 ? int.Parse(args[0]) : 1_000_000;
        var serializer = new SystemTextJsonSerializer { EnumStorage = EnumStorage.AsString, Casing = Casing.CamelCase };
        var stored = new List<byte[]>(count);
        await foreach (var change in ExportScenario.Generate(count)) stored.Add(System.Text.Encoding.UTF8.GetBytes(serializer.ToJson(change)));

        Console.WriteLine($"| {count:N0} events, {PageSize:N0} a page, server GC: {System.Runtime.GCSettings.IsServerGC} | read | read and merge |");
        Console.WriteLine("|---|---|---|");
        for (var round = 1; round <= 3; round++)
        {
            var read = Measure(stored, serializer, merge: false);
            var merged = Measure(stored, serializer, merge: true);
            Console.WriteLine($"| round {round}: time, s | {read.Seconds:F2} | {merged.Seconds:F2} |");
            Console.WriteLine($"| round {round}: allocated per event, bytes | {read.BytesPerEvent:F0} | {merged.BytesPerEvent:F0} |");
            Console.WriteLine($"| round {round}: collections; pauses total, s; pause p50 / max, ms | {read.Collections}; {read.Pause:F2}; " +
                              $"{read.PauseP50:F0} / {read.PauseMax:F0} | {merged.Collections}; {merged.Pause:F2}; {merged.PauseP50:F0} / {merged.PauseMax:F0} |");
        }
    }

    private sealed record Figures(double Seconds, double BytesPerEvent, int Collections, double Pause, double PauseP50, double PauseMax);

    private static Figures Measure(List<byte[]> stored, SystemTextJsonSerializer serializer, bool merge)
    {
        GC.Collect();
        var (collections, allocated, paused) = (GC.CollectionCount(0), GC.GetTotalAllocatedBytes(true), GC.GetTotalPauseDuration());
        var views = new Dictionary<string, RecordView>();
        var pauses = new List<double>();
        var lastCollection = -1L;
        var watch = Stopwatch.StartNew();
        for (var first = 0; first < stored.Count; first += PageSize)
        {
            var page = new List<ChangeRecorded>(PageSize);
            for (var i = first; i < Math.Min(stored.Count, first + PageSize); i++)
                page.Add(serializer.FromJson<ChangeRecorded>(new MemoryStream(stored[i])));
            if (merge)
                foreach (var change in page)
                    RecordViews.Apply(views, change, RecordKey.Of(change));
            var last = GC.GetGCMemoryInfo(GCKind.Any);
            if (last.Index != lastCollection && last.Index > 0)
            {
                lastCollection = last.Index;
                pauses.Add(last.PauseDurations[0].TotalMilliseconds);
            }
        }
        var seconds = watch.Elapsed.TotalSeconds;
        pauses.Sort();
        return new Figures(seconds, (GC.GetTotalAllocatedBytes(true) - allocated) / (double)stored.Count, GC.CollectionCount(0) - collections,
            (GC.GetTotalPauseDuration() - paused).TotalSeconds, pauses.Count > 0 ? pauses[pauses.Count / 2] : 0, pauses.Count > 0 ? pauses[^1] : 0);
    }
}
