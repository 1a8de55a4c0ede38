using System.Diagnostics;

namespace ManaSync.Web.Infrastructure.Tracing;

/// <summary>
/// ManaSync's own spans, where they explain what the stack's spans do not: deciding a write, its commit, the commit
/// notice heard by a node, a feed read and a live delivery (docs/deployment.md "Traces"). With tracing off nothing
/// listens to the source, and starting a span returns null at the cost of one check.
/// </summary>
/// <remarks>These spans carry no token, no user or record id and no record contents: only counts, node ids and timings.</remarks>
public static class SyncTracing
{
    public const string SourceName = "ManaSync";

    public static readonly ActivitySource Source = new(SourceName);

    public const string Write = "manasync.write";
    public const string Decide = "manasync.decide";
    public const string Commit = "manasync.commit";

    /// <summary>An event on the write's span: commit notices queued into its save (sent by PostgreSQL at the commit).</summary>
    public const string NoticeSent = "manasync.notice.sent";
    public const string NoticeHeard = "manasync.notice.heard";
    public const string FeedRead = "manasync.feed.read";
    public const string Delivery = "manasync.live.delivery";

    /// <summary>The node a span ran on (<see cref="TraceNode"/>): a trace crosses nodes.</summary>
    public const string NodeTag = "manasync.node";

    /// <summary>The W3C <c>traceparent</c> of the current span, which a commit notice carries to every node; null when none is recorded.</summary>
    public static string? CurrentTraceparent() => Activity.Current is { Recorded: true } current ? current.Id : null;

    /// <summary>The span context a <c>traceparent</c> names, as a remote parent.</summary>
    public static ActivityContext? ContextOf(string? traceparent) =>
        traceparent is not null && ActivityContext.TryParse(traceparent, null, isRemote: true, out var context) ? context : null;
}

/// <summary>This node's id in spans: one per running server, so a trace shows which node did what.</summary>
public sealed class TraceNode
{
    public string Id { get; } = Guid.NewGuid().ToString("N")[..12];
}
