using System.Net;
using System.Net.WebSockets;
using ManaSync.Testing;
using Xunit;
using static ManaSync.Testing.Changes;

namespace ManaSync.Tests.Tenancy;

/// <summary>Members of a space share its records. Each test uses fresh user and space ids, since memberships are cached.</summary>
[Collection(TenancyCollection.Name)]
public sealed class SpaceTests(TenancyFixture app)
{
    private static object SpaceInsert(string id, string space, object data) =>
        new Dictionary<string, object?> { ["table"] = "tasks", ["id"] = id, ["op"] = "insert", ["data"] = data, ["spaceId"] = space };

    private (string Alice, string Bob, string Carol, string Space) Members()
    {
        var (alice, bob, carol, space) = (UniqueIds.New("alice"), UniqueIds.New("bob"), UniqueIds.New("carol"), UniqueIds.New("org"));
        app.Services.Spaces[alice] = [space];
        app.Services.Spaces[bob] = [space];
        return (alice, bob, carol, space);
    }

    [Fact]
    public async Task Members_read_the_spaces_records_and_others_do_not()
    {
        var (alice, bob, carol, space) = Members();

        (await app.ClientFor(alice).PushAsync("todo", Batch(SpaceInsert("shared-1", space, new { title = "team task" }))))
            .AssertStatus(HttpStatusCode.OK);
        var (bobSees, _) = await app.ClientFor(bob).PullAllAsync("todo", "tasks");
        var (carolSees, _) = await app.ClientFor(carol).PullAllAsync("todo", "tasks");

        var shared = Assert.Single(bobSees);
        Assert.Equal("team task", shared["data"]!["title"]!.GetValue<string>());
        Assert.Equal(space, shared["spaceId"]!.GetValue<string>());
        Assert.Empty(carolSees);
    }

    [Fact]
    public async Task Two_members_editing_one_shared_record_converge()
    {
        var (alice, bob, _, space) = Members();
        (await app.ClientFor(alice).PushAsync("todo", Batch(SpaceInsert("r1", space,
            new { title = "draft", done = false, updatedAt = "2026-01-01T10:00:00.000Z" })))).AssertStatus(HttpStatusCode.OK);

        (await app.ClientFor(alice).PushAsync("todo", Batch(SpaceUpdate("r1", space, "title", "final", "2026-01-01T10:05:00.000Z"))))
            .AssertStatus(HttpStatusCode.OK);
        (await app.ClientFor(bob).PushAsync("todo", Batch(SpaceUpdate("r1", space, "done", true, "2026-01-01T10:06:00.000Z"))))
            .AssertStatus(HttpStatusCode.OK);

        var (aliceView, _) = await app.ClientFor(alice, "fresh-a").PullAllAsync("todo", "tasks");
        var (bobView, _) = await app.ClientFor(bob, "fresh-b").PullAllAsync("todo", "tasks");
        Assert.Equal(Assert.Single(aliceView)["data"]!.ToJsonString(), Assert.Single(bobView)["data"]!.ToJsonString());
        Assert.Equal("final", aliceView[0]["data"]!["title"]!.GetValue<string>());
        Assert.True(aliceView[0]["data"]!["done"]!.GetValue<bool>());
    }

    private static object SpaceUpdate(string id, string space, string field, object value, string at) =>
        new Dictionary<string, object?>
        {
            ["table"] = "tasks", ["id"] = id, ["op"] = "update", ["spaceId"] = space,
            ["fields"] = new Dictionary<string, object> { [field] = new { value, updatedAt = at } },
        };

    [Fact]
    public async Task A_non_member_cannot_write_into_a_space()
    {
        var (_, _, carol, space) = Members();

        var reply = await app.ClientFor(carol).PushAsync("todo", Batch(
            Insert("tasks", "mine", new { }),
            SpaceInsert("intrusion", space, new { title = "spam" })));

        reply.AssertStatus(HttpStatusCode.Forbidden);
        Assert.Equal("forbidden", reply.Json["error"]!.GetValue<string>());
        Assert.Equal(1, reply.Json["index"]!.GetValue<int>());
        Assert.DoesNotContain(await app.StoredEventsAsync(), e => e.UserId == carol);
    }

    [Fact]
    public async Task The_personal_space_needs_no_membership()
    {
        var dave = UniqueIds.New("dave");

        var reply = await app.ClientFor(dave).PushAsync("todo", Batch(SpaceInsert("p1", "_personal:" + dave, new { })));

        reply.AssertStatus(HttpStatusCode.OK);
    }

    [Fact]
    public async Task While_the_auth_service_is_down_space_writes_get_503_and_personal_sync_goes_on()
    {
        var (alice, _, _, space) = Members();
        var erin = UniqueIds.New("erin");
        app.Services.Spaces[erin] = [space];
        (await app.ClientFor(alice).PushAsync("todo", Batch(SpaceInsert("team", space, new { })))).AssertStatus(HttpStatusCode.OK);
        app.Services.AuthDown = true;
        try
        {
            var spaceWrite = await app.ClientFor(erin).PushAsync("todo", Batch(SpaceInsert("s1", space, new { })));
            var personalWrite = await app.ClientFor(erin).PushAsync("todo", Batch(Insert("tasks", "own", new { })));
            var (reads, _) = await app.ClientFor(erin).PullAllAsync("todo", "tasks");

            spaceWrite.AssertStatus(HttpStatusCode.ServiceUnavailable);
            Assert.Equal("membership_unavailable", spaceWrite.Json["error"]!.GetValue<string>());
            personalWrite.AssertStatus(HttpStatusCode.OK);
            Assert.Equal(["own"], reads.Select(change => change["id"]!.GetValue<string>()));
        }
        finally
        {
            app.Services.AuthDown = false;
        }
    }

    [Fact]
    public async Task Both_services_receive_the_service_key()
    {
        await app.ClientFor(UniqueIds.New("frank")).PullAsync("todo", "tasks");

        Assert.NotEmpty(app.Services.ServiceKeys);
        Assert.All(app.Services.ServiceKeys, key => Assert.Equal(TenancyFixture.ServiceKey, key));
    }

    [Fact]
    public async Task Members_websockets_are_told_about_a_push_into_the_space()
    {
        var (alice, bob, carol, space) = Members();
        using var bobSocket = await AuthenticatedSocketAsync(bob);
        using var carolSocket = await AuthenticatedSocketAsync(carol);

        (await app.ClientFor(alice).PushAsync("todo", Batch(SpaceInsert("ws-1", space, new { })))).AssertStatus(HttpStatusCode.OK);
        await carolSocket.SendJsonAsync(new { type = "ping" });

        Assert.Equal("sync-available", (await bobSocket.ReceiveJsonAsync())!["type"]!.GetValue<string>());
        Assert.Equal("pong", (await carolSocket.ReceiveJsonAsync())!["type"]!.GetValue<string>());
    }

    private async Task<WebSocket> AuthenticatedSocketAsync(string user)
    {
        var socket = await app.Host.Server.CreateWebSocketClient().ConnectAsync(new Uri(app.Host.Server.BaseAddress, "ws"), default);
        await socket.SendJsonAsync(new { type = "auth", token = app.TokenFor(user) });
        Assert.Equal("auth-ok", (await socket.ReceiveJsonAsync())!["type"]!.GetValue<string>());
        return socket;
    }
}
