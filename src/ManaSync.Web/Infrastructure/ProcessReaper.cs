using System.Diagnostics;

namespace ManaSync.Web.Infrastructure;

/// <summary>
/// Runs a shell command once a process is gone, however it ends, from a detached watcher: a test host is often
/// killed before its exit handlers run, and what it started (a throwaway cluster, a server) must not outlive it.
/// </summary>
public static class ProcessReaper
{
    /// <param name="owner">The process whose end triggers the command (this one, unless a test says otherwise).</param>
    public static void WhenGone(string command, int? owner = null)
    {
        var script = $"exec >/dev/null 2>&1 </dev/null; while kill -0 {owner ?? Environment.ProcessId} 2>/dev/null; do sleep 1; done; {command}";
        Process.Start(new ProcessStartInfo("setsid", ["-f", "sh", "-c", script]) { UseShellExecute = false })?.Dispose();
    }

    /// <summary>Kills a process once its owner is gone, if it still runs the program it ran (its id may be reused by then).</summary>
    public static void KillWhenGone(int processId, string program, int? owner = null) =>
        WhenGone($"grep -qF {Quote(program)} /proc/{processId}/cmdline && kill -9 {processId}", owner);

    /// <summary>A single-quoted shell word.</summary>
    public static string Quote(string text) => "'" + text.Replace("'", "'\\''") + "'";
}
