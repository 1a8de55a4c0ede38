using ManaSync.Web.Features.Live;
using Microsoft.Extensions.Time.Testing;
using Xunit;

namespace ManaSync.Core.Tests.Live;

public sealed class RereadScheduleTests
{
    private static readonly TimeSpan Interval = TimeSpan.FromSeconds(60), HeldBackRetry = TimeSpan.FromSeconds(1);

    [Fact]
    public void The_first_read_is_due_at_once_and_the_next_within_a_quarter_of_the_interval_either_way()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.UnixEpoch);
        var earliest = new RereadSchedule(clock, Interval, HeldBackRetry, () => 0.0);
        var latest = new RereadSchedule(clock, Interval, HeldBackRetry, () => 1.0);
        var dueAtOnce = (earliest.Due, latest.Due);

        earliest.Read(heldBack: false);
        latest.Read(heldBack: false);

        Assert.Equal((true, true), dueAtOnce);
        Assert.Equal(TimeSpan.FromSeconds(45), earliest.Next - clock.GetUtcNow());
        Assert.Equal(TimeSpan.FromSeconds(75), latest.Next - clock.GetUtcNow());
        Assert.False(earliest.Due);
    }

    [Fact]
    public void Held_back_reads_are_retried_soon_then_backing_off_up_to_the_interval_until_one_is_not()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.UnixEpoch);
        var schedule = new RereadSchedule(clock, Interval, HeldBackRetry, () => 0.5);
        var delays = new List<double>();

        for (var read = 0; read < 8; read++)
        {
            schedule.Read(heldBack: true);
            delays.Add((schedule.Next - clock.GetUtcNow()).TotalSeconds);
            clock.SetUtcNow(schedule.Next);
        }
        schedule.Read(heldBack: false);
        var afterAPlainRead = (schedule.Next - clock.GetUtcNow()).TotalSeconds;
        schedule.Read(heldBack: true);

        Assert.Equal([1, 2, 4, 8, 16, 32, 60, 60], delays);
        Assert.Equal(60, afterAPlainRead);
        Assert.Equal(HeldBackRetry, schedule.Next - clock.GetUtcNow());
    }

    [Fact]
    public void A_wake_makes_the_read_due_now()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.UnixEpoch);
        var schedule = new RereadSchedule(clock, Interval, HeldBackRetry, () => 0.5);
        schedule.Read(heldBack: false);

        schedule.Wake();

        Assert.True(schedule.Due);
    }
}
