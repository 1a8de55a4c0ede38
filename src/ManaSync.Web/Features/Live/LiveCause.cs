using System.Diagnostics;
using ManaSync.Web.Infrastructure.Tracing;

namespace ManaSync.Web.Features.Live;

/// <summary>
/// Why a live connection sends something, as span contexts: this node's handling of the commit notice it heard, and the
/// write (the push) that made the commit. Recorded only while tracing records the notice's handling.
/// </summary>
public readonly record struct LiveCause(ActivityContext Heard, ActivityContext? Write)
{
    /// <summary>The cause of a delivery being asked for now, in the handling of <paramref name="commit"/>; null when not traced.</summary>
    public static LiveCause? Of(ChangesCommitted? commit) =>
        Activity.Current is { Recorded: true } heard ? new LiveCause(heard.Context, SyncTracing.ContextOf(commit?.Trace)) : null;

    /// <summary>
    /// A delivery's span: a child of the first cause's handling, so it joins that push's trace on this node, linked to the
    /// write of every commit it carries and to the connection's own span. Null when nothing caused it or no one listens.
    /// </summary>
    public static Activity? StartDelivery(IReadOnlyList<LiveCause> causes, string transport, TraceNode node, ActivityContext? connection)
    {
        if (causes.Count == 0 || !SyncTracing.Source.HasListeners()) return null;
        var links = causes.Select(cause => cause.Write).Append(connection).OfType<ActivityContext>().Distinct()
            .Select(context => new ActivityLink(context));
        var delivery = SyncTracing.Source.StartActivity(SyncTracing.Delivery, ActivityKind.Producer, causes[0].Heard, links: links);
        delivery?.SetTag(SyncTracing.NodeTag, node.Id);
        delivery?.SetTag("manasync.transport", transport);
        delivery?.SetTag("manasync.commits", causes.Count);
        return delivery;
    }
}

/// <summary>The causes gathered by a connection that coalesces wake-ups (an SSE stream reads once for several commits).</summary>
public sealed class LiveCauses
{
    /// <summary>Links kept per delivery: a burst of commits needs a few to be followed, not all.</summary>
    private const int Kept = 16;

    private readonly Lock _gate = new();
    private readonly List<LiveCause> _causes = [];

    public void Add(LiveCause? cause)
    {
        if (cause is null) return;
        lock (_gate)
            if (_causes.Count < Kept)
                _causes.Add(cause.Value);
    }

    public IReadOnlyList<LiveCause> Take()
    {
        lock (_gate)
        {
            var taken = _causes.ToList();
            _causes.Clear();
            return taken;
        }
    }
}
