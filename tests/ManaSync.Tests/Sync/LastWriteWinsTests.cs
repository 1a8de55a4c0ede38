using System.Net;
using System.Text.Json.Nodes;
using ManaSync.Testing;
using ManaSync.Tests.Support;
using Xunit;
using static ManaSync.Testing.Changes;

namespace ManaSync.Tests.Sync;

public sealed class LastWriteWinsTests(AppFixture app) : SyncTest(app)
{
    private async Task<JsonObject?> CurrentAsync(string id)
    {
        var (changes, _) = await App.ClientFor("alice", "observer").PullAllAsync("todo", "tasks");
        return changes.SingleOrDefault(change => change["id"]!.GetValue<string>() == id);
    }

    [Fact]
    public async Task A_pushed_field_that_loses_is_reported_as_a_conflict()
    {
        var phone = App.ClientFor("alice", "phone");
        (await phone.PushAsync("todo", Batch(Update("tasks", "t1", "title", "newer", "2026-01-01T10:05:00.000Z"))))
            .AssertStatus(HttpStatusCode.OK);

        var reply = await App.ClientFor("alice", "laptop")
            .PushAsync("todo", Batch(Update("tasks", "t1", "title", "older", "2026-01-01T10:01:00.000Z")));

        var conflict = Assert.Single(reply.AssertStatus(HttpStatusCode.OK).Conflicts);
        Assert.Equal("title", conflict["field"]!.GetValue<string>());
        Assert.Equal("older", conflict["clientValue"]!.GetValue<string>());
        Assert.Equal("newer", conflict["serverValue"]!.GetValue<string>());
        Assert.Equal("2026-01-01T10:05:00.000Z", conflict["serverTimestamp"]!.GetValue<string>());
        Assert.Equal("newer", (await CurrentAsync("t1"))!["data"]!["title"]!.GetValue<string>());
    }

    [Fact]
    public async Task Timestamps_are_compared_as_instants_not_strings()
    {
        var device = App.ClientFor("alice");
        // 11:00+02:00 is 09:00Z: earlier, though it sorts later as a string.
        (await device.PushAsync("todo", Batch(Update("tasks", "t1", "title", "utc", "2026-01-01T10:00:00.000Z")))).AssertStatus(HttpStatusCode.OK);
        (await device.PushAsync("todo", Batch(Update("tasks", "t1", "title", "offset", "2026-01-01T11:00:00.000+02:00")))).AssertStatus(HttpStatusCode.OK);

        Assert.Equal("utc", (await CurrentAsync("t1"))!["data"]!["title"]!.GetValue<string>());
    }

    [Fact]
    public async Task Equal_timestamps_go_to_the_later_arrival()
    {
        var device = App.ClientFor("alice");
        (await device.PushAsync("todo", Batch(Update("tasks", "t1", "title", "first", "2026-01-01T10:00:00.000Z")))).AssertStatus(HttpStatusCode.OK);
        (await device.PushAsync("todo", Batch(Update("tasks", "t1", "title", "second", "2026-01-01T10:00:00.000Z")))).AssertStatus(HttpStatusCode.OK);

        Assert.Equal("second", (await CurrentAsync("t1"))!["data"]!["title"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_timestamp_far_in_the_future_is_clamped_to_the_receive_time_and_kept_in_the_event()
    {
        var before = DateTimeOffset.UtcNow;
        (await App.ClientFor("alice").PushAsync("todo", Batch(Update("tasks", "t1", "title", "skewed", "2099-01-01T00:00:00.000Z"))))
            .AssertStatus(HttpStatusCode.OK);

        var stamp = DateTimeOffset.Parse((await CurrentAsync("t1"))!["fields"]!["title"]!["updatedAt"]!.GetValue<string>());
        var stored = Assert.Single(await App.StoredEventsAsync());

        Assert.InRange(stamp, before.AddSeconds(-1), DateTimeOffset.UtcNow.AddSeconds(1));
        Assert.Equal(new DateTimeOffset(2099, 1, 1, 0, 0, 0, TimeSpan.Zero), stored.Fields!["title"].UpdatedAt);
    }

    [Fact]
    public async Task A_hard_delete_is_pulled_as_a_delete_and_a_later_insert_recreates_the_record()
    {
        var writer = App.ClientFor("alice", "writer");
        (await writer.PushAsync("todo", Batch(Insert("tasks", "t1", new { title = "x", updatedAt = "2026-01-01T10:00:00.000Z" }))))
            .AssertStatus(HttpStatusCode.OK);
        var (_, cursor) = await App.ClientFor("alice", "reader").PullAllAsync("todo", "tasks");

        (await writer.PushAsync("todo", Batch(Delete("tasks", "t1")))).AssertStatus(HttpStatusCode.OK);
        var (afterDelete, cursorAfterDelete) = await App.ClientFor("alice", "reader").PullAllAsync("todo", "tasks", cursor);
        var freshAfterDelete = await CurrentAsync("t1");

        var later = DateTimeOffset.UtcNow.AddSeconds(1).ToString("yyyy-MM-ddTHH:mm:ss.fffZ");
        (await writer.PushAsync("todo", Batch(Insert("tasks", "t1", new { title = "again", updatedAt = later }))))
            .AssertStatus(HttpStatusCode.OK);
        var (afterRecreate, _) = await App.ClientFor("alice", "reader").PullAllAsync("todo", "tasks", cursorAfterDelete);

        Assert.Equal("delete", Assert.Single(afterDelete)["op"]!.GetValue<string>());
        Assert.Null(freshAfterDelete);
        var recreated = Assert.Single(afterRecreate);
        Assert.Equal("insert", recreated["op"]!.GetValue<string>());
        Assert.Equal("again", recreated["data"]!["title"]!.GetValue<string>());
        Assert.Null(recreated["data"]!["n"]);
    }

    [Fact]
    public async Task On_an_exact_tie_the_tombstone_wins()
    {
        var writer = App.ClientFor("alice", "writer");
        (await writer.PushAsync("todo", Batch(Delete("tasks", "t1")))).AssertStatus(HttpStatusCode.OK);
        var tombstone = (await App.StoredEventsAsync()).Single().ReceivedAt;

        (await writer.PushAsync("todo", Batch(Update("tasks", "t1", "title", "tie",
            tombstone.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ss.fffffffZ"))))).AssertStatus(HttpStatusCode.OK);

        Assert.Null(await CurrentAsync("t1"));
    }

    [Fact]
    public async Task A_soft_delete_sets_deletedAt_like_any_other_field()
    {
        var writer = App.ClientFor("alice", "writer");
        (await writer.PushAsync("todo", Batch(Insert("tasks", "t1", new { title = "x", updatedAt = "2026-01-01T10:00:00.000Z" }))))
            .AssertStatus(HttpStatusCode.OK);
        (await writer.PushAsync("todo", Batch(Delete("tasks", "t1", "2026-01-01T10:07:00.000Z")))).AssertStatus(HttpStatusCode.OK);

        var current = (await CurrentAsync("t1"))!;

        Assert.Equal("2026-01-01T10:07:00.000Z", current["data"]!["deletedAt"]!.GetValue<string>());
        // Deployed clients skip an incoming change with a top-level deletedAt for a row they lack: an insert never has one.
        Assert.Null(current["deletedAt"]);
        Assert.Equal("x", current["data"]!["title"]!.GetValue<string>());
    }

    [Fact]
    public async Task Changes_written_by_the_pulling_client_are_left_out()
    {
        var phone = App.ClientFor("alice", "phone");
        (await phone.PushAsync("todo", Batch(Insert("tasks", "mine", new { title = "from phone" })))).AssertStatus(HttpStatusCode.OK);
        (await App.ClientFor("alice", "laptop").PushAsync("todo", Batch(Insert("tasks", "theirs", new { title = "from laptop" }))))
            .AssertStatus(HttpStatusCode.OK);

        var (pulled, _) = await phone.PullAllAsync("todo", "tasks");
        var pushed = await phone.PushAsync("todo", Batch());

        Assert.Equal(["theirs"], pulled.Select(change => change["id"]!.GetValue<string>()));
        Assert.Equal(["theirs"], pushed.Changes.Select(change => change["id"]!.GetValue<string>()));
    }

    [Fact]
    public async Task Events_carry_id_schema_version_actor_client_and_space()
    {
        var eventId = Guid.NewGuid();
        (await App.ClientFor("alice", "agent-host").PushAsync("todo", $$$"""
            {"schemaVersion":1,"changes":[{"eventId":"{{{eventId}}}","table":"tasks","id":"t1","op":"insert",
              "data":{"title":"x","spaceId":"_personal:alice"},"actor":{"kind":"ai","missionId":"m-1"}}]}
            """)).AssertStatus(HttpStatusCode.OK);

        var stored = Assert.Single(await App.StoredEventsAsync());
        var pulled = (await CurrentAsync("t1"))!;

        Assert.Equal(eventId, stored.EventId);
        Assert.Equal("agent-host", stored.ClientId);
        Assert.Equal("_personal:alice", stored.SpaceId);
        Assert.Equal(eventId.ToString(), pulled["eventId"]!.GetValue<string>());
        Assert.Equal(1, pulled["schemaVersion"]!.GetValue<int>());
        Assert.Equal("""{"kind":"ai","missionId":"m-1"}""", pulled["actor"]!.ToJsonString());
    }

    [Fact]
    public async Task Absent_optional_members_are_omitted_not_null()
    {
        (await App.ClientFor("alice").PushAsync("todo", Batch(Insert("tasks", "t1", new { title = "x" })))).AssertStatus(HttpStatusCode.OK);

        var pulled = (await CurrentAsync("t1"))!;

        Assert.False(pulled.ContainsKey("actor"));
        Assert.False(pulled.ContainsKey("deletedAt"));
        Assert.False(pulled.ContainsKey("spaceId"));
        Assert.DoesNotContain(pulled, member => member.Value is null);
    }
}
