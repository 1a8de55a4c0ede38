using System.Diagnostics;

namespace ManaSync.Bench;

/// <summary>
/// CPU time used by the server process and by PostgreSQL (every process named postgres: the bench's
/// cluster is the only one) — the cost per push that throughput alone hides when the machine's speed
/// varies between runs. Backends that exit within the window are missed; the server pools its connections.
/// </summary>
public readonly record struct CpuUse(TimeSpan Server, TimeSpan Postgres)
{
    public static CpuUse Now(int serverProcessId) => new(
        Process.GetProcessById(serverProcessId).TotalProcessorTime,
        Directory.EnumerateDirectories("/proc").Aggregate(TimeSpan.Zero, (sum, process) => sum + PostgresCpuOf(process)));

    public static CpuUse operator -(CpuUse after, CpuUse before) => new(after.Server - before.Server, after.Postgres - before.Postgres);

    /// <summary>utime + stime of /proc/[pid]/stat (clock ticks of 1/100 s) when the process is a postgres.</summary>
    private static TimeSpan PostgresCpuOf(string processDirectory)
    {
        try
        {
            var stat = File.ReadAllText(Path.Combine(processDirectory, "stat"));
            var nameEnds = stat.LastIndexOf(')');
            if (stat[(stat.IndexOf('(') + 1)..nameEnds] != "postgres") return TimeSpan.Zero;
            var fields = stat[(nameEnds + 2)..].Split(' '); // from field 3, the state
            return TimeSpan.FromSeconds((long.Parse(fields[11]) + long.Parse(fields[12])) / 100.0);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException)
        {
            return TimeSpan.Zero; // not a process, or exited meanwhile
        }
    }
}
