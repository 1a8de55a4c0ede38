using ManaSync.Web.Infrastructure;
using Xunit;

namespace ManaSync.Core.Tests.Infrastructure;

/// <summary>Background work runs at the lowest priority (on Linux, where the suite runs), from its first step to its last, and hands back its result.</summary>
public sealed class BackgroundSchedulerTests
{
    [Fact]
    public async Task Work_and_its_continuations_after_awaits_run_on_the_schedulers_threads_at_nice_19()
    {
        using var scheduler = new BackgroundScheduler("test", threads: 2);
        var seen = await scheduler.RunAsync(async () =>
        {
            var before = (Thread.CurrentThread.Name, Nice());
            await Task.Delay(10); // completes on a timer thread of the pool
            await Task.Yield();
            return new[] { before, (Thread.CurrentThread.Name, Nice()) };
        });

        Assert.All(seen, step => Assert.StartsWith("test ", step.Name));
        Assert.All(seen, step => Assert.Equal(19, step.Item2));
        Assert.NotEqual(19, Nice()); // the caller's own thread is untouched
    }

    [Fact]
    public async Task A_failure_in_the_work_reaches_the_caller()
    {
        using var scheduler = new BackgroundScheduler("test", threads: 1);
        var failure = await Assert.ThrowsAsync<InvalidOperationException>(() => scheduler.RunAsync<int>(async () =>
        {
            await Task.Yield();
            throw new InvalidOperationException("broken");
        }));
        Assert.Equal("broken", failure.Message);
    }

    [Fact]
    public async Task Work_left_running_when_the_scheduler_ends_still_finishes()
    {
        var release = new TaskCompletionSource();
        Task<int> abandoned;
        using (var scheduler = new BackgroundScheduler("test", threads: 1))
            abandoned = await scheduler.RunAsync(() => Task.FromResult(Continue(release.Task)));
        release.SetResult();
        Assert.Equal(42, await abandoned.WaitAsync(TimeSpan.FromSeconds(10)));

        static async Task<int> Continue(Task released)
        {
            await released;
            return 42;
        }
    }

    /// <summary>The calling thread's nice value (field 19 of its stat line; the command name before it is in parentheses).</summary>
    private static int Nice() =>
        int.Parse(File.ReadAllText("/proc/thread-self/stat").Split(") ")[1].Split(' ')[16]);
}
