using System.Net;
using ManaSync.Testing;
using ManaSync.Tests.Support;
using Xunit;
using static ManaSync.Testing.Changes;

namespace ManaSync.Tests.Sync;

public sealed class PushPullTests(AppFixture app) : SyncTest(app)
{
    [Fact]
    public async Task A_device_pushing_from_the_beginning_pages_past_its_own_records_to_the_others_changes()
    {
        var laptop = App.ClientFor("alice", "laptop");
        (await laptop.PushAsync("todo", Batch([.. Enumerable.Range(0, 1500).Select(i => (object)Insert("tasks", $"own-{i}", new { title = "mine" }))])))
            .AssertStatus(HttpStatusCode.OK);
        (await App.ClientFor("alice", "phone").PushAsync("todo", Batch(Insert("tasks", "from-phone", new { title = "theirs" }))))
            .AssertStatus(HttpStatusCode.OK);
        // The laptop's record the phone then changed is the laptop's no longer: it comes back.
        (await App.ClientFor("alice", "phone").PushAsync("todo", Batch(Update("tasks", "own-7", "title", "edited", "2030-01-01T00:00:00.000Z"))))
            .AssertStatus(HttpStatusCode.OK);

        var received = new List<string>();
        var reply = (await laptop.PushAsync("todo", Batch(Insert("tasks", "one-more", new { title = "mine" })))).AssertStatus(HttpStatusCode.OK);
        received.AddRange(reply.Changes.Select(change => change["id"]!.GetValue<string>()));
        for (var pages = 1; reply.HasMore; pages++)
        {
            Assert.True(pages < 5, "a page holds up to 1,000 records, the laptop's own among them");
            reply = (await laptop.PushAsync("todo", BatchSince(reply.Cursor))).AssertStatus(HttpStatusCode.OK);
            received.AddRange(reply.Changes.Select(change => change["id"]!.GetValue<string>()));
        }

        Assert.Equal(["from-phone", "own-7"], received.Order());
    }

    [Fact]
    public async Task Two_devices_of_one_user_converge()
    {
        var laptop = App.ClientFor("alice", "laptop");
        var phone = App.ClientFor("alice", "phone");

        await laptop.PushAsync("todo", Batch(Insert("tasks", "t1", new { title = "Buy milk", done = false, updatedAt = "2026-01-01T10:00:00.000Z" })))
            .ContinueWith(t => t.Result.AssertStatus(HttpStatusCode.OK));
        var (phoneInitial, phoneCursor) = await phone.PullAllAsync("todo", "tasks");
        var insert = Assert.Single(phoneInitial);
        Assert.Equal("insert", insert["op"]!.GetValue<string>());
        Assert.Equal("Buy milk", insert["data"]!["title"]!.GetValue<string>());

        await phone.PushAsync("todo", Batch(Update("tasks", "t1", "done", true, "2026-01-01T10:02:00.000Z")))
            .ContinueWith(t => t.Result.AssertStatus(HttpStatusCode.OK));
        await laptop.PushAsync("todo", Batch(Update("tasks", "t1", "title", "Buy oat milk", "2026-01-01T10:03:00.000Z")))
            .ContinueWith(t => t.Result.AssertStatus(HttpStatusCode.OK));

        var (laptopView, _) = await App.ClientFor("alice", "laptop-2").PullAllAsync("todo", "tasks");
        var (phoneUpdates, _) = await phone.PullAllAsync("todo", "tasks", phoneCursor);

        var fresh = Assert.Single(laptopView);
        Assert.Equal("Buy oat milk", fresh["data"]!["title"]!.GetValue<string>());
        Assert.True(fresh["data"]!["done"]!.GetValue<bool>());
        var update = Assert.Single(phoneUpdates);
        Assert.Equal("update", update["op"]!.GetValue<string>());
        Assert.Equal("Buy oat milk", update["fields"]!["title"]!["value"]!.GetValue<string>());
        Assert.Equal("2026-01-01T10:03:00.000Z", update["fields"]!["title"]!["updatedAt"]!.GetValue<string>());
    }

    [Fact]
    public async Task Another_user_sees_nothing()
    {
        (await App.ClientFor("alice").PushAsync("todo", Batch(Insert("tasks", "secret", new { title = "Alice's" }))))
            .AssertStatus(HttpStatusCode.OK);

        var bob = App.ClientFor("bob");
        var (pulled, _) = await bob.PullAllAsync("todo", "tasks");
        var pushReply = (await bob.PushAsync("todo", Batch())).AssertStatus(HttpStatusCode.OK);

        Assert.Empty(pulled);
        Assert.Empty(pushReply.Changes);
    }
}
