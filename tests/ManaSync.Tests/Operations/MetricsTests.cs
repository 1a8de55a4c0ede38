using System.Net;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using ManaSync.Testing;
using ManaSync.Tests.Support;
using Xunit;
using static ManaSync.Testing.Changes;
using static ManaSync.Tests.Support.Scrape;

namespace ManaSync.Tests.Operations;

/// <summary>/metrics in Prometheus text format. Metrics are process-wide, so the tests compare before and after.</summary>
public sealed class MetricsTests(AppFixture app) : SyncTest(app)
{
    private async Task<string> ScrapeAsync()
    {
        using var response = await App.Client.GetAsync("/metrics");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.StartsWith("text/plain", response.Content.Headers.ContentType?.MediaType);
        return await response.Content.ReadAsStringAsync();
    }

    [Fact]
    public async Task The_documented_metrics_are_present_without_a_token()
    {
        var scrape = await ScrapeAsync();

        foreach (var name in new[]
                 {
                     "mana_sync_connections_total", "mana_sync_users_connected", "mana_sync_live_subscribers",
                     "mana_sync_events_appended_total", "mana_sync_push_batch_size", "mana_sync_conflicts_total",
                     "mana_sync_notification_lag_seconds", "http_request_duration_seconds",
                 })
            Assert.Contains("# TYPE " + name, scrape);
    }

    [Fact]
    public async Task Pushes_move_the_counters()
    {
        var before = await ScrapeAsync();
        var device = App.ClientFor("alice");
        (await device.PushAsync("todo", Batch(
            Update("tasks", "t1", "title", "new", "2026-01-01T10:05:00.000Z"),
            Insert("tasks", "t2", new { })))).AssertStatus(HttpStatusCode.OK);
        (await device.PushAsync("todo", Batch(Update("tasks", "t1", "title", "old", "2026-01-01T10:00:00.000Z"))))
            .AssertStatus(HttpStatusCode.OK);

        var after = await ScrapeAsync();

        // Other collections' hosts run in this process at the same time and count too: at least ours.
        Assert.True(Value(after, "mana_sync_events_appended_total") - Value(before, "mana_sync_events_appended_total") >= 3);
        Assert.True(Value(after, "mana_sync_conflicts_total") - Value(before, "mana_sync_conflicts_total") >= 1);
        Assert.True(Value(after, "mana_sync_push_batch_size_count") - Value(before, "mana_sync_push_batch_size_count") >= 2);
        Assert.Matches("http_request_duration_seconds_count\\{[^}]*endpoint=\"/sync/\\{appId\\}\"", after);
        // The stack's own meters, through the same exporter: Wolverine's handling of the commit notice, Marten's appends.
        Assert.Matches("wolverine_[a-z_]*_wolverine_execution_time_count\\{[^}]*message_type=\"ManaSync.Web.Features.Live.ChangesCommitted\"", after);
        Assert.Matches("marten_marten_event_append\\{[^}]*event_type=\"change_recorded\"", after);
        Assert.Matches("npgsql_db_client_commands_duration_count", after);

        // Every metric the Grafana dashboard shows is one this server serves.
        var dashboard = JsonNode.Parse(File.ReadAllText(Path.Combine(ServerProcess.RepositoryRoot(), "docs", "grafana", "manasync.json")))!;
        var shown = dashboard["panels"]!.AsArray().SelectMany(panel => panel!["targets"]!.AsArray())
            .SelectMany(target => Regex.Matches(target!["expr"]!.GetValue<string>(), "(?<![\\w\"])(mana_sync|http|npgsql|marten|process|system_runtime)_[a-z_]+")
                .Select(match => match.Value))
            .Distinct().ToList();
        Assert.NotEmpty(shown);
        Assert.All(shown, metric => Assert.Matches($"(?m)^{metric}[{{ ]", after));
    }
}
