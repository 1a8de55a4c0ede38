using System.Net;
using System.Net.WebSockets;
using System.Text.Json.Nodes;
using ManaSync.Testing;
using ManaSync.Tests.Reliability;
using ManaSync.Web.Infrastructure;
using Xunit;
using static ManaSync.Testing.Changes;

namespace ManaSync.Tests.Operations;

/// <summary>The server outlives its database and stops cleanly: each test has a cluster and a server process of its own.</summary>
public sealed class ResilienceTests : IAsyncLifetime
{
    private EmbeddedPostgres _cluster = null!;
    private ServerProcess _server = null!;

    public async Task InitializeAsync()
    {
        // Durable: the test crashes PostgreSQL and must find every acknowledged write afterwards.
        _cluster = await EmbeddedPostgres.StartThrowawayAsync(durable: true);
        _server = await ServerProcess.StartAsync(_cluster.ConnectionString);
    }

    public async Task DisposeAsync()
    {
        await _server.DisposeAsync();
        await _cluster.DisposeAsync();
    }

    private async Task<(HttpStatusCode Status, JsonObject Body)> HealthAsync()
    {
        using var response = await _server.Client.GetAsync("/health");
        return (response.StatusCode, JsonNode.Parse(await response.Content.ReadAsStringAsync())!.AsObject());
    }

    private async Task<(HttpStatusCode Status, JsonObject Body)> HealthBecomesAsync(HttpStatusCode expected)
    {
        for (var attempt = 0; attempt < 120; attempt++)
        {
            var health = await HealthAsync();
            if (health.Status == expected) return health;
            await Task.Delay(250);
        }
        throw new TimeoutException($"/health never answered {expected}.");
    }

    [Fact]
    public async Task Health_turns_degraded_while_postgres_is_down_and_recovers_without_a_restart()
    {
        var device = await _server.ClientForAsync("alice");
        (await device.PushAsync("todo", Batch(Insert("tasks", "before", new { })))).AssertStatus(HttpStatusCode.OK);

        await _cluster.CrashAsync();
        var (_, degraded) = await HealthBecomesAsync(HttpStatusCode.ServiceUnavailable);
        var refused = await device.PushAsync("todo", Batch(Insert("tasks", "during", new { })));
        await _cluster.RestartAsync();
        var (_, recovered) = await HealthBecomesAsync(HttpStatusCode.OK);
        Reply? accepted = null;
        for (var attempt = 0; attempt < 20 && accepted?.Status != HttpStatusCode.OK; attempt++)
            accepted = await device.PushAsync("todo", Batch(Insert("tasks", "after", new { })));
        var (pulled, _) = await device.PullAllAsync("todo", "tasks");

        Assert.Equal("degraded", degraded["status"]!.GetValue<string>());
        Assert.True((int)refused.Status >= 500, refused.Text);
        Assert.NotNull(refused.Json["error"]);
        Assert.Equal("ok", recovered["status"]!.GetValue<string>());
        Assert.Equal(HttpStatusCode.OK, accepted!.Status);
        Assert.Equal(["after", "before"], pulled.Select(change => change["id"]!.GetValue<string>()).Order());
    }

    [Fact]
    public async Task Pushes_under_load_come_through_a_database_crash_without_a_restart_and_without_loss()
    {
        var devices = new List<PushLoad.Device>();
        for (var device = 0; device < 8; device++)
            devices.Add(new PushLoad.Device("alice", $"device-{device}", await _server.ClientForAsync("alice", $"device-{device}")));

        var load = PushLoad.Start(devices, batchSize: 10);
        await load.AcknowledgedAtLeastAsync(20, within: TimeSpan.FromSeconds(60));
        await _cluster.CrashAsync();
        var (_, degraded) = await HealthBecomesAsync(HttpStatusCode.ServiceUnavailable);
        var acknowledgedWhileDown = load.Acknowledged.Count;
        await _cluster.RestartAsync();
        // The same server process, never restarted, must drop its dead connections and accept pushes again.
        await load.AcknowledgedAtLeastAsync(acknowledgedWhileDown + 20, within: TimeSpan.FromSeconds(30));
        await load.StopAsync();
        var stored = await PushLedger.StoredEventIdsAsync(_cluster.ConnectionString);
        await PushLedger.RetryInDoubtAsync(load, (user, clientId) => _server.ClientForAsync(user, clientId));
        var afterRetries = await PushLedger.StoredEventIdsAsync(_cluster.ConnectionString);

        Assert.Equal("degraded", degraded["status"]!.GetValue<string>());
        Assert.NotEmpty(load.InDoubt);
        PushLedger.AssertNoBatchLostOrHalfStored(load, stored);
        PushLedger.AssertEachChangeStoredOnce(load, afterRetries);
    }

    /// <summary>Commits made while the change listener was disconnected went unannounced: a socket of one app is told to pull.</summary>
    [Fact]
    public async Task A_websocket_of_one_app_is_told_to_pull_after_the_database_comes_back()
    {
        var device = await _server.ClientForAsync("alice");
        using var socket = new ClientWebSocket();
        await socket.ConnectAsync(new UriBuilder(_server.BaseAddress) { Scheme = "ws", Path = "/ws/todo" }.Uri, CancellationToken.None);
        await socket.SendJsonAsync(new { type = "auth", token = device.Token });
        var authenticated = await socket.ReceiveJsonAsync();

        await _cluster.CrashAsync();
        await HealthBecomesAsync(HttpStatusCode.ServiceUnavailable);
        await _cluster.RestartAsync();
        var told = await socket.ReceiveJsonAsync(withinSeconds: 30);

        Assert.Equal("auth-ok", authenticated!["type"]!.GetValue<string>());
        Assert.Equal("sync-available", told!["type"]!.GetValue<string>());
        Assert.Equal("todo", told["appId"]!.GetValue<string>());
    }

    [Fact]
    public async Task Sigterm_ends_open_streams_and_exits_0_within_15_s()
    {
        var device = await _server.ClientForAsync("alice");
        await using var stream = await SseStream.OpenAsync(_server.Client, "/sync/todo/stream", device.Token);

        var exitCode = await _server.TerminateAsync(TimeSpan.FromSeconds(15));

        Assert.Equal(0, exitCode);
        Assert.True(await stream.EndsWithinAsync(5));
    }
}
