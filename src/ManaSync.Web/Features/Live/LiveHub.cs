namespace ManaSync.Web.Features.Live;

/// <summary>
/// This node's live subscribers (SSE streams and WebSockets), told about commits from every node.
/// Delivering is a cheap, non-blocking call per subscriber, so a slow client never holds up others.
/// </summary>
public sealed class LiveHub
{
    private readonly Lock _gate = new();
    private readonly List<Subscription> _subscriptions = [];

    public int Subscribers { get { lock (_gate) return _subscriptions.Count; } }

    /// <param name="wants">Which commits the subscriber cares about.</param>
    /// <param name="deliver">Must not block: signal, or enqueue into a bounded buffer.</param>
    public IDisposable Subscribe(Func<ChangesCommitted, bool> wants, Action<ChangesCommitted?> deliver)
    {
        var subscription = new Subscription(this, wants, deliver);
        lock (_gate) _subscriptions.Add(subscription);
        return subscription;
    }

    public void Publish(ChangesCommitted commit)
    {
        foreach (var subscription in Snapshot())
            if (subscription.Wants(commit)) subscription.Deliver(commit);
    }

    /// <summary>Notifications may have been missed (the listener reconnected): everyone rereads.</summary>
    public void WakeAll()
    {
        foreach (var subscription in Snapshot()) subscription.Deliver(null);
    }

    private Subscription[] Snapshot()
    {
        lock (_gate) return _subscriptions.ToArray();
    }

    private sealed class Subscription(LiveHub hub, Func<ChangesCommitted, bool> wants, Action<ChangesCommitted?> deliver) : IDisposable
    {
        public Func<ChangesCommitted, bool> Wants { get; } = wants;
        public Action<ChangesCommitted?> Deliver { get; } = deliver;

        public void Dispose()
        {
            lock (hub._gate) hub._subscriptions.Remove(this);
        }
    }
}
