using ManaSync.Web.Features.Live;
using ManaSync.Web.Features.WritePath;
using ManaSync.Web.Infrastructure;
using ManaSync.Web.Features.Rebuild;
using Prometheus;

namespace ManaSync.Web.Features.Metrics;

/// <summary>
/// What GET /metrics reports besides the HTTP request rate and latency (prometheus-net's own):
/// live connections (under the names existing dashboards use), appends, batch sizes, conflicts,
/// subscribers, how long a commit takes to reach a node's subscribers, and rebuilds of the record view.
/// </summary>
public static class SyncMetrics
{
    private static readonly Gauge Connections = Prometheus.Metrics.CreateGauge(
        "mana_sync_connections_total", "Open live connections (SSE streams and WebSockets) on this node.");
    private static readonly Gauge Users = Prometheus.Metrics.CreateGauge(
        "mana_sync_users_connected", "Distinct users with a live connection on this node.");
    private static readonly Gauge Subscribers = Prometheus.Metrics.CreateGauge(
        "mana_sync_live_subscribers", "Subscriptions to commit notifications on this node.");
    private static readonly Counter EventsAppended = Prometheus.Metrics.CreateCounter(
        "mana_sync_events_appended_total", "Events appended by pushes and imports.");
    private static readonly Histogram BatchSize = Prometheus.Metrics.CreateHistogram(
        "mana_sync_push_batch_size", "Changes per push request.",
        new HistogramConfiguration { Buckets = [0, 1, 5, 10, 50, 100, 500, 1000, 5000] });
    private static readonly Counter Conflicts = Prometheus.Metrics.CreateCounter(
        "mana_sync_conflicts_total", "Pushed fields that lost last-write-wins.");
    private static readonly Histogram NotificationLag = Prometheus.Metrics.CreateHistogram(
        "mana_sync_notification_lag_seconds", "From a push's commit to its notification reaching this node.",
        new HistogramConfiguration { Buckets = Histogram.ExponentialBuckets(0.001, 2, 14) });

    private static readonly Gauge RebuildRunning = Prometheus.Metrics.CreateGauge(
        "mana_sync_rebuild_running", "1 while this node runs a rebuild of the record view.");
    private static readonly Gauge RebuildEventsDone = Prometheus.Metrics.CreateGauge(
        "mana_sync_rebuild_events_done", "Events merged into the new record view by this node's latest rebuild.");
    private static readonly Gauge RebuildEventsTotal = Prometheus.Metrics.CreateGauge(
        "mana_sync_rebuild_events_total", "Events this node's latest rebuild has to merge, as far as known.");
    private static readonly Gauge RebuildChanged = Prometheus.Metrics.CreateGauge(
        "mana_sync_rebuild_changed_records", "Records whose state this node's latest rebuild changed (reissued to clients).");
    private static readonly Counter RebuildKept = Prometheus.Metrics.CreateCounter(
        "mana_sync_rebuild_kept_records_total",
        "Live records a rebuilt view lacked at its switch, kept as they were. Any is a bug (the build missed events): alert on it.");

    /// <summary>Gauges are read from the live state when Prometheus scrapes, so they are never stale.</summary>
    public static void ReportLiveState(LiveConnections connections, LiveHub hub, ViewRebuilder rebuilder) =>
        Prometheus.Metrics.DefaultRegistry.AddBeforeCollectCallback(() =>
        {
            Connections.Set(connections.Connections);
            Users.Set(connections.Users);
            Subscribers.Set(hub.Subscribers);
            if (rebuilder.Current is not { } rebuild) return;
            RebuildRunning.Set(rebuild.State is "running" or "catching-up" ? 1 : 0);
            RebuildEventsDone.Set(rebuild.EventsDone);
            RebuildEventsTotal.Set(rebuild.EventsTotal);
            RebuildChanged.Set(rebuild.ChangedRecords);
        });

    public static void Pushed(int batchSize, WriteOutcome outcome)
    {
        BatchSize.Observe(batchSize);
        EventsAppended.Inc(outcome.Stored);
        Conflicts.Inc(outcome.Conflicts.Count);
    }

    public static void Imported(int events) => EventsAppended.Inc(events);

    public static void KeptAtSwitch(long records) => RebuildKept.Inc(records);

    public static void NotificationArrived(TimeSpan lag) => NotificationLag.Observe(Math.Max(0, lag.TotalSeconds));
}
