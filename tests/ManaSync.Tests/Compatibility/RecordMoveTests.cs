using System.Net;
using System.Text.Json.Nodes;
using ManaSync.Testing;
using ManaSync.Tests.Tenancy;
using Microsoft.Extensions.Time.Testing;
using Xunit;
using static ManaSync.Testing.Changes;

namespace ManaSync.Tests.Compatibility;

/// <summary>
/// Records move between spaces: the deployed client rewrites "_personal:&lt;user&gt;" to the real personal
/// space at login, and later changes of a record carry the space it was moved to. A record stays one
/// record per (app, table, id) for everyone who can see it. Each test uses fresh users and spaces,
/// since memberships are cached.
/// </summary>
[Collection(TenancyCollection.Name)]
public sealed class RecordMoveTests(TenancyFixture app)
{
    private readonly FakeTimeProvider _time = new(DateTimeOffset.UtcNow);

    private (string Alice, string Bob, string Personal, string Team) People()
    {
        var (alice, bob, personal, team) = (UniqueIds.New("alice"), UniqueIds.New("bob"), UniqueIds.New("personal"), UniqueIds.New("team"));
        app.Services.Spaces[alice] = [personal, team];
        app.Services.Spaces[bob] = [team];
        return (alice, bob, personal, team);
    }

    private DeployedClient Device(string user, string clientId) => app.DeviceFor(user, clientId, "todo", ["tasks"], _time.GetUtcNow);

    private void Later() => _time.Advance(TimeSpan.FromSeconds(1));

    private void Edit(DeployedClient device, string title)
    {
        Later();
        device.Update("tasks", "t1", ("title", title), ("updatedAt", DeployedClient.Iso(_time.GetUtcNow())));
    }

    private void MoveTo(DeployedClient device, string space)
    {
        Later();
        device.Update("tasks", "t1", ("spaceId", space));
    }

    /// <summary>
    /// Every change of one response, grouped by record: one change each, or a soft delete followed by the
    /// record's state, or a delete followed by the record created again.
    /// </summary>
    private static void AssertOneRecordEach(Reply reply)
    {
        foreach (var record in reply.Changes.GroupBy(change => (change["table"]!.GetValue<string>(), change["id"]!.GetValue<string>())))
        {
            var shape = record.Select(change => change["op"]!.GetValue<string>() + (change.ContainsKey("deletedAt") ? "+deletedAt" : "")).ToList();
            Assert.True(shape.Count == 1 || shape.SequenceEqual(["delete+deletedAt", "update"]) || shape.SequenceEqual(["delete", "insert"]),
                $"{record.Key}: {string.Join(", ", shape)}");
        }
    }

    [Fact]
    public async Task A_record_moved_from_the_personal_sentinel_into_a_team_and_out_again_stays_one_record_for_everyone()
    {
        var (alice, bob, personal, team) = People();
        var laptop = Device(alice, "laptop");
        var phone = Device(alice, "phone");
        var bobsPhone = Device(bob, "bobs-phone");

        laptop.Create("tasks", new JsonObject { ["id"] = "t1", ["title"] = "draft", ["updatedAt"] = DeployedClient.Iso(_time.GetUtcNow()) });
        await laptop.PushAllAsync();
        await phone.PullAsync();

        // Login: the sentinel becomes the personal space; the rewrite itself sends the old spaceId and no fields.
        Later();
        laptop.ReconcileSentinels(personal);
        Edit(laptop, "planned");
        await laptop.PushAllAsync();
        await phone.PullAsync();
        Assert.Equal(personal, phone.Row("tasks", "t1")!["spaceId"]!.GetValue<string>());

        MoveTo(laptop, team);
        Edit(laptop, "team plan");
        await laptop.PushAllAsync();
        await bobsPhone.PullAsync();
        Assert.Equal("team plan", bobsPhone.Row("tasks", "t1")!["title"]!.GetValue<string>());
        Assert.Equal(team, bobsPhone.Row("tasks", "t1")!["spaceId"]!.GetValue<string>());

        Edit(bobsPhone, "team plan, reviewed");
        await bobsPhone.PushAllAsync();
        await laptop.PullAsync();
        MoveTo(laptop, personal);
        Edit(laptop, "mine again");
        await laptop.PushAllAsync();

        await bobsPhone.PullAsync();
        await phone.PullAsync();
        var newDevice = Device(alice, "tablet");
        await newDevice.PullAsync();

        Assert.Null(bobsPhone.Row("tasks", "t1"));
        foreach (var device in new[] { laptop, phone, newDevice })
        {
            var row = device.Row("tasks", "t1")!;
            Assert.Equal("mine again", row["title"]!.GetValue<string>());
            Assert.Equal(personal, row["spaceId"]!.GetValue<string>());
        }
        Assert.Equal(laptop.Rows("tasks"), newDevice.Rows("tasks"));
        Assert.Equal(phone.Rows("tasks"), newDevice.Rows("tasks"));

        var fromScratch = await app.ClientFor(alice).PullAsync("todo", "tasks", "");
        Assert.Single(fromScratch.AssertStatus(HttpStatusCode.OK).Changes);
        var pushReply = await app.ClientFor(alice, "other").PushAsync("todo", BatchSince("1970-01-01T00:00:00.000Z"));
        AssertOneRecordEach(pushReply.AssertStatus(HttpStatusCode.OK));
        Assert.Single(pushReply.Changes, change => change["op"]!.GetValue<string>() != "delete");
    }

    [Fact]
    public async Task An_edit_made_before_a_move_but_pushed_after_it_lands_on_the_moved_record()
    {
        var (alice, _, personal, _) = People();
        var laptop = Device(alice, "laptop");
        var phone = Device(alice, "phone");
        laptop.Create("tasks", new JsonObject { ["id"] = "t1", ["title"] = "draft", ["done"] = false });
        await laptop.PushAllAsync();
        await phone.PullAsync();

        Later();
        phone.Update("tasks", "t1", ("done", true));
        laptop.ReconcileSentinels(personal);
        Edit(laptop, "planned");
        await laptop.PushAllAsync();
        await phone.PushAllAsync();

        var fresh = Device(alice, "tablet");
        await fresh.PullAsync();
        var row = Assert.Single(fresh.Rows("tasks"));
        var record = JsonNode.Parse(row.Value)!;
        Assert.Equal("planned", record["title"]!.GetValue<string>());
        Assert.True(record["done"]!.GetValue<bool>());
        Assert.Equal(personal, record["spaceId"]!.GetValue<string>());
    }

    [Fact]
    public async Task Moving_a_record_into_a_space_needs_membership_of_it()
    {
        var (alice, _, _, _) = People();
        var foreign = UniqueIds.New("foreign");
        var laptop = app.ClientFor(alice, "laptop");
        (await laptop.PushAsync("todo", Batch(Insert("tasks", "t1", new { title = "mine" })))).AssertStatus(HttpStatusCode.OK);

        var move = await laptop.PushAsync("todo", Batch(new Dictionary<string, object?>
        {
            ["table"] = "tasks", ["id"] = "t1", ["op"] = "update", ["spaceId"] = foreign,
            ["fields"] = new Dictionary<string, object> { ["title"] = new { value = "stolen", updatedAt = "2099-01-01T00:00:00.000Z" } },
        }));

        move.AssertStatus(HttpStatusCode.Forbidden);
        var (pulled, _) = await app.ClientFor(alice, "tablet").PullAllAsync("todo", "tasks");
        Assert.Equal("mine", Assert.Single(pulled)["data"]!["title"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_member_who_cannot_see_where_a_record_went_cannot_write_it_back_into_view()
    {
        var (alice, bob, personal, team) = People();
        var alicesLaptop = Device(alice, "laptop");
        var bobsPhone = Device(bob, "bobs-phone");
        alicesLaptop.Create("tasks", new JsonObject { ["id"] = "t1", ["title"] = "team task", ["spaceId"] = team });
        await alicesLaptop.PushAllAsync();
        await bobsPhone.PullAsync();

        MoveTo(alicesLaptop, personal);
        Edit(alicesLaptop, "private now");
        await alicesLaptop.PushAllAsync();
        Edit(bobsPhone, "bob was here");
        await bobsPhone.PushAllAsync();
        await bobsPhone.PullAsync();

        var alicesTablet = Device(alice, "tablet");
        await alicesTablet.PullAsync();
        Assert.Null(bobsPhone.Row("tasks", "t1"));
        Assert.Equal("private now", Assert.Single(alicesTablet.Rows("tasks")).Value is var row ? JsonNode.Parse(row)!["title"]!.GetValue<string>() : "");
        var (bobSees, _) = await app.ClientFor(bob, "bobs-laptop").PullAllAsync("todo", "tasks");
        Assert.Empty(bobSees);
    }
}
