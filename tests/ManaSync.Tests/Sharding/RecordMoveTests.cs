using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using ManaSync.Events;
using ManaSync.Web.Features.WritePath;
using ManaSync.Web.Infrastructure.Isolation;
using ManaSync.Testing;
using Microsoft.Extensions.Time.Testing;
using Npgsql;
using Xunit;
using static ManaSync.Testing.Changes;

namespace ManaSync.Tests.Sharding;

/// <summary>
/// A client moves a record between a scope of one shard and a scope of another (alice's own records live in main, her
/// team's in s2): the record lives where it was moved, both shards store the move, teammates get it or lose it, and a
/// later move of the whole space keeps the state the record brought along.
/// </summary>
public sealed class RecordMoveTests(ShardedFixture app) : ShardedTest(app)
{
    private readonly string _mate = UniqueIds.New("mate");

    public override async Task InitializeAsync()
    {
        await base.InitializeAsync();
        App.Services.Spaces[_mate] = [Team];
        await App.PlaceAsync(("u:" + _mate, "s2"));
    }

    [Fact]
    public async Task A_record_moved_into_a_space_of_another_shard_lives_there_and_teammates_get_it_whole()
    {
        var laptop = App.ClientFor(User, "laptop");
        var phone = App.ClientFor(User, "phone");
        (await laptop.PushAsync("todo", Batch(Insert("tasks", "t1", new { title = "mine", n = 1, updatedAt = "2026-01-01T10:00:00.000Z" }))))
            .AssertStatus(HttpStatusCode.OK);
        var (_, phoneCursor) = await phone.PullAllAsync("todo", "tasks");

        // The move and a later change of the moved record (naming the space it is in now, as clients do) in one batch.
        var edit = Update("tasks", "t1", "title", "shared", "2026-01-01T10:02:00.000Z");
        edit["spaceId"] = Team;
        (await laptop.PushAsync("todo", Batch(Update("tasks", "t1", "spaceId", Team, "2026-01-01T10:01:00.000Z"), edit))).AssertStatus(HttpStatusCode.OK);

        var (mates, _) = await App.ClientFor(_mate, "desk").PullAllAsync("todo", "tasks");
        var (phones, _) = await phone.PullAllAsync("todo", "tasks", phoneCursor);
        foreach (var record in new[] { Assert.Single(mates), Assert.Single(phones) })
        {
            Assert.Equal("shared", ValueOf(record, "title"));
            Assert.Equal("1", ValueOf(record, "n"));
            Assert.Equal(Team, ValueOf(record, "spaceId"));
            Assert.Null(record["deletedAt"]);
        }
        Assert.Equal(1, await CountAsync(App.Shard2, "select count(*) from manasync.mt_doc_recordview where scope = $1 and data ->> 'movedTo' is null",
            "s:" + Team));
        Assert.Equal(1, await CountAsync(App.ConnectionString, "select count(*) from manasync.mt_doc_recordview where scope = $1 and data ->> 'movedTo' = $2",
            "u:" + User, "s:" + Team));
        // The move is stored in both shards under one eventId; the later change only where the record lives.
        Assert.Equal(1, await CountAsync(App.Shard2, "select count(*) from manasync.mt_events where data ->> 'movedFrom' = $1", "u:" + User));
        Assert.Equal(1, await CountAsync(App.ConnectionString, "select count(*) from manasync.mt_events where data ->> 'movedFrom' = $1", "u:" + User));
        Assert.Equal(2, await CountAsync(App.Shard2, "select count(*) from manasync.mt_events where data ->> 'recordScope' = $1", "s:" + Team));
        Assert.Equal(0, await CountAsync(App.ConnectionString,
            "select count(*) from manasync.mt_events where data ->> 'recordScope' = $1 and data ->> 'movedFrom' is null", "s:" + Team));
        Assert.Equal(0, await CountAsync(App.ConnectionString, "select count(*) from manasync.mt_doc_recordview where scope = $1", "s:" + Team));
    }

    [Fact]
    public async Task The_deployed_client_moves_a_record_from_its_personal_space_into_a_team_of_another_shard_and_back()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var personal = UniqueIds.New("personal");
        App.Services.Spaces[User] = [personal, Team];
        var laptop = App.DeviceFor(User, "laptop", "todo", ["tasks"], time.GetUtcNow);
        var phone = App.DeviceFor(User, "phone", "todo", ["tasks"], time.GetUtcNow);
        var matesPhone = App.DeviceFor(_mate, "mates-phone", "todo", ["tasks"], time.GetUtcNow);
        void Retitle(DeployedClient device, string title)
        {
            time.Advance(TimeSpan.FromSeconds(1));
            device.Update("tasks", "t1", ("title", title), ("updatedAt", DeployedClient.Iso(time.GetUtcNow())));
        }
        void MoveTo(DeployedClient device, string space)
        {
            time.Advance(TimeSpan.FromSeconds(1));
            device.Update("tasks", "t1", ("spaceId", space));
        }

        laptop.Create("tasks", new JsonObject { ["id"] = "t1", ["title"] = "draft", ["updatedAt"] = DeployedClient.Iso(time.GetUtcNow()) });
        await laptop.PushAllAsync();
        time.Advance(TimeSpan.FromSeconds(1));
        laptop.ReconcileSentinels(personal);
        await laptop.PushAllAsync();
        await phone.PullAsync();
        MoveTo(laptop, Team);
        Retitle(laptop, "team plan");
        await laptop.PushAllAsync();
        await matesPhone.PullAsync();
        Assert.Equal("team plan", matesPhone.Row("tasks", "t1")!["title"]!.GetValue<string>());

        Retitle(matesPhone, "team plan, reviewed");
        await matesPhone.PushAllAsync();
        await laptop.PullAsync();
        MoveTo(laptop, personal);
        Retitle(laptop, "mine again");
        await laptop.PushAllAsync();
        await matesPhone.PullAsync();
        await phone.PullAsync();
        var tablet = App.DeviceFor(User, "tablet", "todo", ["tasks"], time.GetUtcNow);
        await tablet.PullAsync();

        Assert.Equal("s2", await ShardOfAsync("s:" + Team));
        Assert.Equal("main", await ShardOfAsync("s:" + personal));
        Assert.Null(matesPhone.Row("tasks", "t1"));
        foreach (var device in new[] { laptop, phone, tablet })
        {
            var row = device.Row("tasks", "t1")!;
            Assert.Equal("mine again", row["title"]!.GetValue<string>());
            Assert.Equal(personal, row["spaceId"]!.GetValue<string>());
        }
        Assert.Equal(laptop.Rows("tasks"), tablet.Rows("tasks"));
    }

    [Fact]
    public async Task A_record_moved_back_to_its_owner_leaves_the_teammates_of_the_other_shard()
    {
        var laptop = App.ClientFor(User, "laptop");
        var desk = App.ClientFor(_mate, "desk");
        (await laptop.PushAsync("todo", Batch(Insert("tasks", "t1", new { title = "mine", spaceId = Team, updatedAt = "2026-01-01T10:00:00.000Z" }))))
            .AssertStatus(HttpStatusCode.OK);
        var (before, deskCursor) = await desk.PullAllAsync("todo", "tasks");
        Assert.Single(before);

        (await laptop.PushAsync("todo", Batch(Update("tasks", "t1", "spaceId", "_personal:" + User, "2026-01-01T10:05:00.000Z"))))
            .AssertStatus(HttpStatusCode.OK);

        var (gone, _) = await desk.PullAllAsync("todo", "tasks", deskCursor);
        Assert.Equal("delete", Assert.Single(gone)["op"]!.GetValue<string>());
        var (own, _) = await App.ClientFor(User, "new-phone").PullAllAsync("todo", "tasks");
        Assert.Equal("mine", ValueOf(Assert.Single(own), "title"));
        Assert.Equal(1, await CountAsync(App.ConnectionString,
            "select count(*) from manasync.mt_doc_recordview where scope = $1 and data ->> 'movedTo' is null", "u:" + User));
        Assert.Equal(1, await CountAsync(App.Shard2,
            "select count(*) from manasync.mt_doc_recordview where scope = $1 and data ->> 'movedTo' = $2", "s:" + Team, "u:" + User));
    }

    [Fact]
    public async Task A_space_moved_to_the_shard_its_record_came_from_keeps_what_the_record_brought()
    {
        var laptop = App.ClientFor(User, "laptop");
        (await laptop.PushAsync("todo", Batch(Insert("tasks", "t1", new { title = "mine", n = 1, updatedAt = "2026-01-01T10:00:00.000Z" }))))
            .AssertStatus(HttpStatusCode.OK);
        (await laptop.PushAsync("todo", Batch(Update("tasks", "t1", "spaceId", Team, "2026-01-01T10:01:00.000Z")))).AssertStatus(HttpStatusCode.OK);

        // main has the move already (it moved the record out of alice's scope there): the team's view there must take it in too.
        var move = await ServerProcess.RunCommandAsync(App.ConnectionString, App.ShardSettings, "shards", "move", Team, "main", "--grace", "0");
        Assert.True(move.ExitCode == 0, move.Errors);

        var (mates, _) = await App.ClientFor(_mate, "new-desk").PullAllAsync("todo", "tasks");
        var record = Assert.Single(mates);
        Assert.Equal("mine", ValueOf(record, "title"));
        Assert.Equal("1", ValueOf(record, "n"));
        Assert.Equal(0, await CountViewsAsync(App.Shard2, "s:" + Team));
        Assert.Equal(1, await CountAsync(App.ConnectionString, "select count(*) from manasync.mt_events where data ->> 'movedFrom' = $1", "u:" + User));
    }

    [Fact]
    public async Task A_move_left_pending_by_a_stopped_node_arrives_through_the_sweeper()
    {
        // As a node that died after main committed a move into the team: the move's arrival in s2 is recorded in main.
        var moved = new ChangeRecorded
        {
            EventId = Guid.NewGuid(), SchemaVersion = 1, UserId = User, AppId = "todo", Table = "tasks", RecordId = "t1", Op = ChangeOp.Insert,
            Data = JsonDocument.Parse($$"""{"title":"brought","spaceId":"{{Team}}"}""").RootElement, SpaceId = Team, RecordScope = "s:" + Team,
            ClientId = "laptop", ReceivedAt = DateTimeOffset.UtcNow, FutureLimit = DateTimeOffset.UtcNow.AddMinutes(5), CommitTx = 1, CommitIndex = 0,
            BatchIndex = 0,
        };
        var part = new PendingWrite(Guid.NewGuid(), "s2", new Caller(User, [Team]), [], [moved]);
        await using (var connection = new NpgsqlConnection(App.ConnectionString))
        {
            await connection.OpenAsync();
            await using var record = new NpgsqlCommand(
                "insert into manasync.pending_writes (id, shard, user_id, part, created_at) values ($1, 's2', $2, $3::jsonb, now() - interval '1 minute')",
                connection) { Parameters = { new() { Value = part.Id }, new() { Value = User }, new() { Value = JsonSerializer.Serialize(part) } } };
            await record.ExecuteNonQueryAsync();
        }

        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (await CountAsync(App.ConnectionString, "select count(*) from manasync.pending_writes where id = $1", part.Id) > 0 && DateTime.UtcNow < deadline)
            await Task.Delay(200);

        Assert.Equal(1, await CountAsync(App.Shard2, "select count(*) from manasync.mt_events where id = $1", moved.EventId));
        var (mates, _) = await App.ClientFor(_mate, "desk").PullAllAsync("todo", "tasks");
        Assert.Equal("brought", ValueOf(Assert.Single(mates), "title"));
    }

    /// <summary>A field's value as a client applies the change: from an insert's data, else from its fields.</summary>
    private static string? ValueOf(JsonObject change, string field) =>
        (change["data"]?[field] ?? change["fields"]?[field]?["value"])?.ToJsonString().Trim('"');
}
