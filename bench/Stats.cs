namespace ManaSync.Bench;

public static class Stats
{
    /// <summary>The p-th percentile (0–100) of the samples, nearest rank.</summary>
    public static double Percentile(IReadOnlyList<double> samples, double p)
    {
        if (samples.Count == 0) return double.NaN;
        var sorted = samples.Order().ToList();
        var rank = (int)Math.Ceiling(p / 100 * sorted.Count) - 1;
        return sorted[Math.Clamp(rank, 0, sorted.Count - 1)];
    }

    public static double Milliseconds(long fromTimestamp, long toTimestamp) =>
        (toTimestamp - fromTimestamp) * 1000.0 / System.Diagnostics.Stopwatch.Frequency;

    /// <summary>Resident memory of a process, from /proc.</summary>
    public static long ResidentBytes(int processId) =>
        File.ReadLines($"/proc/{processId}/status")
            .Where(line => line.StartsWith("VmRSS:"))
            .Select(line => long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) * 1024)
            .Single();

    /// <summary>
    /// The largest resident memory of a process while some work runs, sampled every 50 ms, beside what it held before (after a
    /// few seconds' rest, so the work before has settled).
    /// </summary>
    public static async Task<(long Before, long Peak, T Result)> PeakResidentBytesAsync<T>(int processId, Func<Task<T>> work)
    {
        await Task.Delay(TimeSpan.FromSeconds(3));
        var before = ResidentBytes(processId);
        var peak = before;
        using var sampling = new CancellationTokenSource();
        var sampler = Task.Run(async () =>
        {
            while (!sampling.IsCancellationRequested)
            {
                peak = Math.Max(peak, ResidentBytes(processId));
                await Task.Delay(50);
            }
        });
        var result = await work();
        await sampling.CancelAsync();
        await sampler;
        return (before, peak, result);
    }
}
