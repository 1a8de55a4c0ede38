using System.Diagnostics;
using ManaSync.Web.Infrastructure;
using Xunit;

namespace ManaSync.Tests.Hosting;

/// <summary>What a test host starts dies with it, however the host ends (<see cref="ProcessReaper"/>).</summary>
public sealed class ProcessReaperTests
{
    [Fact]
    public async Task A_process_is_killed_once_its_owner_is_gone()
    {
        using var owner = Process.Start("sleep", "600")!;
        using var started = Process.Start("sleep", "601")!;
        ProcessReaper.KillWhenGone(started.Id, "601", owner.Id);

        owner.Kill();
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await started.WaitForExitAsync(deadline.Token);

        Assert.True(started.HasExited);
    }

    [Fact]
    public async Task A_process_running_another_program_under_that_id_is_left_alone()
    {
        using var owner = Process.Start("sleep", "600")!;
        using var other = Process.Start("sleep", "602")!;
        ProcessReaper.KillWhenGone(other.Id, "ManaSync.Web.dll", owner.Id);
        ProcessReaper.WhenGone($"touch {ProcessReaper.Quote(Path.Combine(Path.GetTempPath(), $"reaped-{owner.Id}"))}", owner.Id);

        owner.Kill();
        var marker = Path.Combine(Path.GetTempPath(), $"reaped-{owner.Id}");
        for (var waited = 0; !File.Exists(marker) && waited < 300; waited++) await Task.Delay(100);

        Assert.True(File.Exists(marker), "the watchers ran");
        await Task.Delay(TimeSpan.FromSeconds(2)); // the other watcher polls its owner once a second, as this one does
        Assert.False(other.HasExited);
        other.Kill();
        File.Delete(marker);
    }
}
