using System.Net;
using ManaSync.Testing;
using Xunit;

namespace ManaSync.Tests.Reliability;

/// <summary>The server process dies mid-push (kill -9): what it acknowledged is kept, nothing is half stored.</summary>
public sealed class CrashSafetyTests : IAsyncLifetime
{
    private string _database = null!;
    private ServerProcess _server = null!;

    public async Task InitializeAsync()
    {
        _database = await TestCluster.CreateDatabaseAsync();
        _server = await ServerProcess.StartAsync(_database);
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task Killing_the_server_while_eight_devices_push_loses_no_acknowledged_batch_and_leaves_none_half_stored()
    {
        var devices = new List<PushLoad.Device>();
        foreach (var user in new[] { "alice", "bob" })
            for (var device = 0; device < 4; device++)
                devices.Add(new PushLoad.Device(user, $"{user}-{device}", await _server.ClientForAsync(user, $"{user}-{device}")));

        var load = PushLoad.Start(devices, batchSize: 20);
        await load.AcknowledgedAtLeastAsync(40, within: TimeSpan.FromSeconds(60));
        await _server.KillAsync();
        await load.StopAsync();
        await _server.DisposeAsync();

        _server = await ServerProcess.StartAsync(_database);
        var afterRestart = await PushLedger.StoredEventIdsAsync(_database);
        await PushLedger.RetryInDoubtAsync(load, (user, clientId) => _server.ClientForAsync(user, clientId));
        var afterRetries = await PushLedger.StoredEventIdsAsync(_database);
        var alice = await _server.ClientForAsync("alice", "fresh-device");
        var (pulled, _) = await alice.PullAllAsync("todo", "tasks");

        Assert.NotEmpty(load.InDoubt);
        PushLedger.AssertNoBatchLostOrHalfStored(load, afterRestart);
        PushLedger.AssertEachChangeStoredOnce(load, afterRetries);
        var aliceRecords = load.Acknowledged.Concat(load.InDoubt).Where(batch => batch.UserId == "alice").SelectMany(batch => batch.RecordIds);
        Assert.Equal(aliceRecords.Order(), pulled.Select(change => change["id"]!.GetValue<string>()).Order());
    }
}
