namespace ManaSync.Web.Features.Live;

/// <summary>
/// Hands a commit heard from any node (<see cref="ChangeListener"/>) to this node's live subscribers.
/// It runs on Wolverine's local queue, so the listener's connection goes back to reading the next
/// notification while a commit that concerns many streams is being fanned out.
/// </summary>
public static class ChangesCommittedHandler
{
    public static void Handle(ChangesCommitted commit, LiveHub hub, TimeProvider time)
    {
        Metrics.SyncMetrics.NotificationArrived(time.GetUtcNow() - commit.CommittedAt);
        hub.Publish(commit);
    }
}
