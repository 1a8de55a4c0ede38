using ManaSync.Projections.Records;

namespace ManaSync.Web.Features.Live;

/// <summary>
/// This node's live subscribers (SSE streams and WebSockets), told about commits from every node.
/// Delivering is a cheap, non-blocking call per subscriber, so a slow client never holds up others.
/// </summary>
/// <remarks>
/// Subscribers are filed under the record scopes they read, so a commit is offered only to those of
/// its scopes and its author's: testing every open stream against every commit was 7 % of the
/// server's samples in the fan-out benchmark with 1,000 streams (docs/benchmarks.md).
/// </remarks>
public sealed class LiveHub
{
    private readonly Lock _gate = new();
    private readonly HashSet<Subscription> _all = [];
    private readonly Dictionary<string, HashSet<Subscription>> _byScope = [];

    public int Subscribers { get { lock (_gate) return _all.Count; } }

    /// <param name="scopes">The record scopes the subscriber reads (the caller's own and their spaces').</param>
    /// <param name="wants">Which of the commits to those scopes, or by the caller, it cares about.</param>
    /// <param name="deliver">Must not block: signal, or enqueue into a bounded buffer.</param>
    public IDisposable Subscribe(IEnumerable<string> scopes, Func<ChangesCommitted, bool> wants, Action<ChangesCommitted?> deliver)
    {
        var subscription = new Subscription(this, scopes.Distinct().ToArray(), wants, deliver);
        lock (_gate)
        {
            _all.Add(subscription);
            foreach (var scope in subscription.Scopes)
            {
                if (!_byScope.TryGetValue(scope, out var filed)) _byScope[scope] = filed = [];
                filed.Add(subscription);
            }
        }
        return subscription;
    }

    public void Publish(ChangesCommitted commit)
    {
        foreach (var subscription in Concerned(commit))
            if (subscription.Wants(commit)) subscription.Deliver(commit);
    }

    /// <summary>Notifications may have been missed (the listener reconnected): everyone rereads.</summary>
    public void WakeAll()
    {
        Subscription[] everyone;
        lock (_gate) everyone = [.. _all];
        foreach (var subscription in everyone) subscription.Deliver(null);
    }

    private HashSet<Subscription> Concerned(ChangesCommitted commit)
    {
        var concerned = new HashSet<Subscription>();
        lock (_gate)
            foreach (var scope in commit.Scopes.Append(RecordKey.UserScope(commit.UserId)))
                if (_byScope.TryGetValue(scope, out var filed))
                    concerned.UnionWith(filed);
        return concerned;
    }

    private void Remove(Subscription subscription)
    {
        lock (_gate)
        {
            _all.Remove(subscription);
            foreach (var scope in subscription.Scopes)
                if (_byScope.TryGetValue(scope, out var filed) && filed.Remove(subscription) && filed.Count == 0)
                    _byScope.Remove(scope);
        }
    }

    private sealed class Subscription(LiveHub hub, string[] scopes, Func<ChangesCommitted, bool> wants, Action<ChangesCommitted?> deliver)
        : IDisposable
    {
        public string[] Scopes { get; } = scopes;
        public Func<ChangesCommitted, bool> Wants { get; } = wants;
        public Action<ChangesCommitted?> Deliver { get; } = deliver;

        public void Dispose() => hub.Remove(this);
    }
}
