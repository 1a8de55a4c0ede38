using System.Net;
using System.Text.Json.Nodes;
using ManaSync.Testing;
using ManaSync.Tests.Support;
using Xunit;
using static ManaSync.Testing.Changes;

namespace ManaSync.Tests.Audit;

public sealed class AuditTests(AppFixture app) : SyncTest(app)
{
    private async Task<(DateTimeOffset AfterInsert, DateTimeOffset AfterUpdates)> SeedAsync()
    {
        var device = App.ClientFor("alice", "laptop");
        (await device.PushAsync("todo", Batch(Insert("tasks", "t1", new { title = "draft", updatedAt = "2026-01-01T10:00:00.000Z" }))))
            .AssertStatus(HttpStatusCode.OK);
        var afterInsert = DateTimeOffset.UtcNow;
        await Task.Delay(50);
        (await App.ClientFor("alice", "phone").PushAsync("todo", Batch(
            Update("tasks", "t1", "title", "final", "2026-01-01T10:05:00.000Z"),
            Update("tasks", "t1", "title", "stale", "2026-01-01T09:00:00.000Z")))).AssertStatus(HttpStatusCode.OK);
        var afterUpdates = DateTimeOffset.UtcNow;
        await Task.Delay(50);
        (await device.PushAsync("todo", Batch(Delete("tasks", "t1")))).AssertStatus(HttpStatusCode.OK);
        return (afterInsert, afterUpdates);
    }

    [Fact]
    public async Task History_lists_every_event_with_each_fields_value_before_and_after()
    {
        await SeedAsync();

        var reply = (await App.ClientFor("alice").SendRawAsync(HttpMethod.Get, "/audit/todo/tasks/t1/history")).AssertStatus(HttpStatusCode.OK);
        var events = reply.Json["events"]!.AsArray().Select(e => e!.AsObject()).ToList();

        Assert.Equal(["insert", "update", "update", "delete"], events.Select(e => e["op"]!.GetValue<string>()));
        Assert.Equal("laptop", events[0]["clientId"]!.GetValue<string>());
        Assert.Null(events[0]["fields"]!["title"]!["before"]);
        Assert.Equal("draft", events[0]["fields"]!["title"]!["after"]!.GetValue<string>());
        Assert.Equal("draft", events[1]["fields"]!["title"]!["before"]!.GetValue<string>());
        Assert.Equal("final", events[1]["fields"]!["title"]!["after"]!.GetValue<string>());
        Assert.Empty(events[2]["fields"]!.AsObject());
        Assert.Equal("final", events[3]["fields"]!["title"]!["before"]!.GetValue<string>());
        Assert.Null(events[3]["fields"]!["title"]!["after"]);
        Assert.All(events, e => Assert.Matches("^[0-9a-f-]{36}$", e["eventId"]!.GetValue<string>()));
    }

    [Fact]
    public async Task As_of_a_time_the_record_is_what_the_server_held_then()
    {
        var (afterInsert, afterUpdates) = await SeedAsync();
        var alice = App.ClientFor("alice");

        JsonObject At(Reply reply) => reply.AssertStatus(HttpStatusCode.OK).Json["records"]![0]!.AsObject();
        var first = At(await alice.SendRawAsync(HttpMethod.Get, $"/audit/todo/tasks/t1?asOf={Uri.EscapeDataString(afterInsert.ToString("O"))}"));
        var second = At(await alice.SendRawAsync(HttpMethod.Get, $"/audit/todo/tasks/t1?asOf={Uri.EscapeDataString(afterUpdates.ToString("O"))}"));
        var now = At(await alice.SendRawAsync(HttpMethod.Get, $"/audit/todo/tasks/t1?asOf={Uri.EscapeDataString(DateTimeOffset.UtcNow.ToString("O"))}"));
        var before = await alice.SendRawAsync(HttpMethod.Get, "/audit/todo/tasks/t1?asOf=2000-01-01T00:00:00Z");

        Assert.Equal("draft", first["record"]!["data"]!["title"]!.GetValue<string>());
        Assert.Equal("final", second["record"]!["data"]!["title"]!.GetValue<string>());
        Assert.True(now["deleted"]!.GetValue<bool>());
        Assert.Null(now["record"]);
        before.AssertStatus(HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task Another_user_gets_404_and_a_bad_time_400()
    {
        await SeedAsync();
        var bob = App.ClientFor("bob");

        (await bob.SendRawAsync(HttpMethod.Get, "/audit/todo/tasks/t1/history")).AssertStatus(HttpStatusCode.NotFound);
        (await bob.SendRawAsync(HttpMethod.Get, $"/audit/todo/tasks/t1?asOf={Uri.EscapeDataString(DateTimeOffset.UtcNow.ToString("O"))}"))
            .AssertStatus(HttpStatusCode.NotFound);
        (await App.ClientFor("alice").SendRawAsync(HttpMethod.Get, "/audit/todo/tasks/t1?asOf=yesterday")).AssertStatus(HttpStatusCode.BadRequest);
    }
}
