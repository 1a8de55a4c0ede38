namespace ManaSync.Web.Features.Live;

/// <summary>
/// When a live stream next reads its feed without being woken by a commit. Normally at the safety-net
/// interval, spread ±25 % per stream so that streams opened together (every client reconnecting after
/// a deploy) do not reread together. After a read that an older, still-running transaction held back:
/// soon, then backing off while that transaction runs on, since each such read waits for it.
/// </summary>
public sealed class RereadSchedule(TimeProvider time, TimeSpan interval, TimeSpan heldBackRetry, Func<double> random)
{
    /// <summary>The delay after the last held-back read; zero while reads are not held back.</summary>
    private TimeSpan _heldBackDelay;

    /// <summary>The first read is due at once.</summary>
    public DateTimeOffset Next { get; private set; } = time.GetUtcNow();

    public bool Due => time.GetUtcNow() >= Next;

    /// <summary>A commit woke the stream: read now.</summary>
    public void Wake() => Next = time.GetUtcNow();

    public void Read(bool heldBack)
    {
        if (heldBack)
        {
            _heldBackDelay = _heldBackDelay == TimeSpan.Zero
                ? heldBackRetry
                : TimeSpan.FromTicks(Math.Min(_heldBackDelay.Ticks * 2, interval.Ticks));
            Next = time.GetUtcNow() + _heldBackDelay;
        }
        else
        {
            _heldBackDelay = TimeSpan.Zero;
            Next = time.GetUtcNow() + interval * (0.75 + random() / 2);
        }
    }
}
