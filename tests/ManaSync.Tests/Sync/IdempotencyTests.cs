using System.Net;
using ManaSync.Testing;
using ManaSync.Tests.Support;
using Xunit;
using static ManaSync.Testing.Changes;

namespace ManaSync.Tests.Sync;

public sealed class IdempotencyTests(AppFixture app) : SyncTest(app)
{
    [Fact]
    public async Task A_retried_batch_is_stored_once()
    {
        var device = App.ClientFor("alice", "phone");
        var batch = Batch(
            Insert("tasks", "t1", new { title = "one" }, Guid.NewGuid()),
            Update("tasks", "t1", "title", "two", "2026-01-01T10:00:00.000Z", Guid.NewGuid()));

        (await device.PushAsync("todo", batch)).AssertStatus(HttpStatusCode.OK);
        (await device.PushAsync("todo", batch)).AssertStatus(HttpStatusCode.OK);

        Assert.Equal(2, (await App.StoredEventsAsync()).Count);
    }

    [Fact]
    public async Task A_retry_with_members_in_another_order_is_the_same_payload()
    {
        var eventId = Guid.NewGuid();
        var device = App.ClientFor("alice");
        (await device.PushAsync("todo",
                $$$"""{"changes":[{"eventId":"{{{eventId}}}","table":"t","id":"a","op":"insert","data":{"x":1,"y":2}}]}"""))
            .AssertStatus(HttpStatusCode.OK);

        (await device.PushAsync("todo",
                $$$"""{"changes":[{"op":"insert","data":{"y":2,"x":1},"id":"a","table":"t","eventId":"{{{eventId}}}"}]}"""))
            .AssertStatus(HttpStatusCode.OK);

        Assert.Single(await App.StoredEventsAsync());
    }

    [Fact]
    public async Task The_same_event_id_with_another_payload_is_a_conflict_and_nothing_of_the_batch_is_stored()
    {
        var eventId = Guid.NewGuid();
        var device = App.ClientFor("alice");
        (await device.PushAsync("todo", Batch(Insert("tasks", "t1", new { title = "one" }, eventId)))).AssertStatus(HttpStatusCode.OK);

        var reply = await device.PushAsync("todo", Batch(
            Insert("tasks", "t2", new { title = "new" }, Guid.NewGuid()),
            Insert("tasks", "t1", new { title = "changed" }, eventId)));

        reply.AssertStatus(HttpStatusCode.Conflict);
        Assert.Equal(1, reply.Json["index"]!.GetValue<int>());
        Assert.Single(await App.StoredEventsAsync());
    }

    [Fact]
    public async Task The_same_batch_pushed_on_four_connections_at_once_is_stored_once()
    {
        var batch = Batch(Enumerable.Range(0, 20)
            .Select(i => (object)Insert("tasks", $"t{i}", new { n = i }, Guid.NewGuid())).ToArray());

        var replies = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => App.ClientFor("alice").PushAsync("todo", batch)));

        Assert.All(replies, reply => reply.AssertStatus(HttpStatusCode.OK));
        Assert.Equal(20, (await App.StoredEventsAsync()).Count);
    }

    [Fact]
    public async Task Another_users_event_id_is_a_conflict_not_a_silent_success()
    {
        var eventId = Guid.NewGuid();
        var change = Insert("tasks", "t1", new { title = "one" }, eventId);
        (await App.ClientFor("alice").PushAsync("todo", Batch(change))).AssertStatus(HttpStatusCode.OK);

        (await App.ClientFor("mallory").PushAsync("todo", Batch(change))).AssertStatus(HttpStatusCode.Conflict);
    }
}
