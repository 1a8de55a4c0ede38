using System.Net;
using ManaSync.Testing;
using ManaSync.Tests.Support;
using Xunit;

namespace ManaSync.Tests.Reliability;

/// <summary>The server process dies mid-push (kill -9): what it acknowledged is kept, nothing is half stored.</summary>
public sealed class CrashSafetyTests : OwnServerTest
{
    [Fact]
    public async Task Killing_the_server_while_eight_devices_push_loses_no_acknowledged_batch_and_leaves_none_half_stored()
    {
        var devices = new List<PushLoad.Device>();
        foreach (var user in new[] { "alice", "bob" })
            for (var device = 0; device < 4; device++)
                devices.Add(new PushLoad.Device(user, $"{user}-{device}", await Server.ClientForAsync(user, $"{user}-{device}")));

        var load = PushLoad.Start(devices, batchSize: 20);
        await load.AcknowledgedAtLeastAsync(40, within: TimeSpan.FromSeconds(60));
        await Server.KillAsync();
        await load.StopAsync();
        await Server.DisposeAsync();

        Server = await ServerProcess.StartAsync(Database);
        var afterRestart = await PushLedger.StoredEventIdsAsync(Database);
        await PushLedger.RetryInDoubtAsync(load, (user, clientId) => Server.ClientForAsync(user, clientId));
        var afterRetries = await PushLedger.StoredEventIdsAsync(Database);
        var alice = await Server.ClientForAsync("alice", "fresh-device");
        var (pulled, _) = await alice.PullAllAsync("todo", "tasks");

        Assert.NotEmpty(load.InDoubt);
        PushLedger.AssertNoBatchLostOrHalfStored(load, afterRestart);
        PushLedger.AssertEachChangeStoredOnce(load, afterRetries);
        var aliceRecords = load.Acknowledged.Concat(load.InDoubt).Where(batch => batch.UserId == "alice").SelectMany(batch => batch.RecordIds);
        Assert.Equal(aliceRecords.Order(), pulled.Select(change => change["id"]!.GetValue<string>()).Order());
    }
}
