using System.Net;
using ManaSync.Testing;
using ManaSync.Tests.Support;
using ManaSync.Web.Features.Sync;
using Npgsql;
using Xunit;
using static ManaSync.Testing.Changes;

namespace ManaSync.Tests.Live;

/// <summary>Holds back the cluster's commit horizon, so it runs alone, with the other long-transaction tests.</summary>
[Collection(LongTransactionCollection.Name)]
public sealed class HeldBackStreamTests : OwnServerTest
{
    [Fact]
    public async Task A_change_held_back_by_an_older_running_transaction_is_streamed_soon_after_that_transaction_ends()
    {
        var device = await Server.ClientForAsync("alice", "writer");
        await using var stream = await SseStream.OpenAsync(Server.Client, "/sync/todo/stream?collections=tasks", device.Token);
        await using var older = new NpgsqlConnection(Database);
        await older.OpenAsync();
        await using var transaction = await older.BeginTransactionAsync();
        await using (var takeId = new NpgsqlCommand("select pg_current_xact_id()", older, transaction))
            await takeId.ExecuteScalarAsync();

        (await device.PushAsync("todo", Batch(Insert("tasks", "held-back", new { })))).AssertStatus(HttpStatusCode.OK);
        // The stream's read, woken by the push, gives up waiting for the older transaction, as the push's answer did.
        await Task.Delay(ChangeFeed.MaxSettleWait + TimeSpan.FromSeconds(1));
        await transaction.RollbackAsync();

        // Long before the 30 s heartbeat and the safety-net reread (45 s at the soonest): only the retry of
        // the held-back read can bring it.
        var streamed = await stream.NextAsync(withinSeconds: 10);
        Assert.Equal("held-back", streamed.Json["changes"]![0]!["id"]!.GetValue<string>());
    }
}
