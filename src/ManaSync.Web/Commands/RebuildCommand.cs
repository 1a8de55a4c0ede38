using System.Diagnostics;
using JasperFx.CommandLine;
using ManaSync.Web.Features.Rebuild;

namespace ManaSync.Web.Commands;

public sealed class RebuildInput : NetCoreInput
{
    [Description("Build and compare, report how many records would change, and do not switch")]
    public bool DryRunFlag { get; set; }
}

/// <summary>
/// `rebuild [--dry-run]`: rebuilds the record view beside the live one while servers keep serving, then switches
/// (<see cref="ViewRebuilder"/>), showing progress; killed, it resumes where it stopped when run again. Refused while a
/// rebuild runs anywhere. It reads every user's events, so it runs as a role that bypasses row security.
/// </summary>
[Description("Rebuild the record view while the servers keep serving", Name = "rebuild")]
public sealed class RebuildCommand : JasperFxAsyncCommand<RebuildInput>
{
    public override async Task<bool> Execute(RebuildInput input)
    {
        using var host = input.BuildHost();
        var rebuilder = host.Services.GetRequiredService<ViewRebuilder>();
        var clock = Stopwatch.StartNew();
        var shown = TimeSpan.Zero;
        void Show(RebuildStatus status)
        {
            if (clock.Elapsed - shown < TimeSpan.FromSeconds(1)) return;
            shown = clock.Elapsed;
            Console.Error.WriteLine(ProgressLine(status, clock.Elapsed));
        }

        try
        {
            var end = await rebuilder.RunAsync(input.DryRunFlag, Show, CancellationToken.None);
            Console.Error.WriteLine(ProgressLine(end, clock.Elapsed));
            Console.WriteLine(input.DryRunFlag
                ? $"dry run: {end.EventsDone} events, {end.ChangedRecords} records would change; nothing switched"
                : $"switched: {end.EventsDone} events, {end.ChangedRecords} records changed and reissued to clients");
            return true;
        }
        catch (InvalidOperationException e)
        {
            await Console.Error.WriteLineAsync(e.Message);
            return false;
        }
    }

    /// <summary>"events 120000 / 1000000 (12 %), 35000/s, 25 s left, 3 records changed".</summary>
    public static string ProgressLine(RebuildStatus status, TimeSpan elapsed)
    {
        var rate = elapsed.TotalSeconds > 0 ? status.EventsDone / elapsed.TotalSeconds : 0;
        var share = status.EventsTotal > 0 ? 100.0 * status.EventsDone / status.EventsTotal : 100;
        var left = rate > 0 ? TimeSpan.FromSeconds(Math.Max(0, status.EventsTotal - status.EventsDone) / rate) : TimeSpan.Zero;
        return $"{status.State}: events {status.EventsDone} / {status.EventsTotal} ({share:0} %), {rate:0}/s, {left.TotalSeconds:0} s left, " +
               $"{status.ChangedRecords} records changed";
    }
}
