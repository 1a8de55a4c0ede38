using System.Net;
using System.Text.Json;
using ManaSync.Events;
using ManaSync.Web.Features.WritePath;
using ManaSync.Web.Infrastructure.Isolation;
using Npgsql;
using ManaSync.Testing;
using Xunit;
using static ManaSync.Testing.Changes;

namespace ManaSync.Tests.Sharding;

/// <summary>
/// A batch whose changes live on two shards (alice's own records in main, her team's in s2) is stored all or nothing;
/// a part left behind by a node that stopped between the shards' commits is stored by the sweeper.
/// </summary>
public sealed class ShardedWriteTests(ShardedFixture app) : ShardedTest(app)
{
    private readonly string _foreign = UniqueIds.New("foreign");

    public override async Task InitializeAsync()
    {
        await base.InitializeAsync();
        await App.PlaceAsync(("s:" + _foreign, "s2"));
    }

    [Fact]
    public async Task A_batch_across_shards_is_stored_in_both_and_leaves_nothing_pending()
    {
        (await App.ClientFor(User, "laptop").PushAsync("todo", Batch(
            Insert("tasks", "own-1", new { n = 1 }),
            Insert("tasks", "team-1", new { n = 2, spaceId = Team }),
            Insert("tasks", "own-2", new { n = 3 })))).AssertStatus(HttpStatusCode.OK);

        Assert.Equal(2, await CountAsync(App.ConnectionString, "select count(*) from manasync.mt_doc_recordview where scope = $1", "u:" + User));
        Assert.Equal(1, await CountAsync(App.Shard2, "select count(*) from manasync.mt_doc_recordview where scope = $1", "s:" + Team));
        Assert.Equal(0, await CountAsync(App.ConnectionString, "select count(*) from manasync.pending_writes where user_id = $1", User));
    }

    [Fact]
    public async Task A_part_refused_on_one_shard_stores_nothing_on_the_other_and_names_the_change_sent()
    {
        var reply = await App.ClientFor(User, "laptop").PushAsync("todo", Batch(
            Insert("tasks", "own", new { n = 1 }),
            Insert("tasks", "not-mine", new { n = 2, spaceId = _foreign })));

        reply.AssertStatus(HttpStatusCode.Forbidden);
        Assert.Equal(1, reply.Json["index"]!.GetValue<int>());
        Assert.Contains("changes[1]", reply.Json["message"]!.GetValue<string>());
        Assert.Equal(0, await CountAsync(App.ConnectionString, "select count(*) from manasync.mt_doc_recordview where scope = $1", "u:" + User));
        Assert.Equal(0, await CountAsync(App.ConnectionString, "select count(*) from manasync.pending_writes where user_id = $1", User));
    }

    [Fact]
    public async Task A_part_left_pending_by_a_stopped_node_is_stored_once_by_the_sweeper()
    {
        // As a node that died after main committed: the team's part is recorded in main, half of it already stored in s2.
        var stored = Change("already-there");
        var missing = Change("left-behind");
        var writer = new Caller(User, [Team]);
        (await App.ClientFor(User, "laptop").PushAsync("todo", Batch(
            Insert("tasks", "already-there", new { n = 1, spaceId = Team }, stored.EventId)))).AssertStatus(HttpStatusCode.OK);
        var part = new PendingWrite(Guid.NewGuid(), "s2", writer, [stored, missing]);
        await using (var connection = new NpgsqlConnection(App.ConnectionString))
        {
            await connection.OpenAsync();
            await using var record = new NpgsqlCommand(
                "insert into manasync.pending_writes (id, shard, user_id, part, created_at) values ($1, 's2', $2, $3::jsonb, now() - interval '1 minute')",
                connection) { Parameters = { new() { Value = part.Id }, new() { Value = User }, new() { Value = JsonSerializer.Serialize(part) } } };
            await record.ExecuteNonQueryAsync();
        }

        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (await CountAsync(App.ConnectionString, "select count(*) from manasync.pending_writes where user_id = $1", User) > 0 &&
               DateTime.UtcNow < deadline)
            await Task.Delay(200);

        Assert.Equal(0, await CountAsync(App.ConnectionString, "select count(*) from manasync.pending_writes where user_id = $1", User));
        Assert.Equal(2, await CountAsync(App.Shard2, "select count(*) from manasync.mt_events where data ->> 'spaceId' = $1", Team));
        var (changes, _) = await App.ClientFor(User, "phone").PullAllAsync("todo", "tasks");
        Assert.Equal(["already-there", "left-behind"], changes.Select(change => change["id"]!.GetValue<string>()).Order());
    }

    [Fact]
    public async Task A_new_space_is_placed_with_theUser_who_first_writes_it()
    {
        var user = UniqueIds.New("fay");
        var space = UniqueIds.New("personal-org");
        App.Services.Spaces[user] = [space];
        await App.PlaceAsync(("u:" + user, "s2"));

        (await App.ClientFor(user, "laptop").PushAsync("todo", Batch(Insert("tasks", "t1", new { spaceId = space })))).AssertStatus(HttpStatusCode.OK);

        Assert.Equal("s2", await ShardOfAsync("s:" + space));
    }

    private IncomingChange Change(string id) => new()
    {
        EventId = Guid.NewGuid(), SchemaVersion = 1, UserId = User, AppId = "todo", Table = "tasks", RecordId = id, Op = ChangeOp.Insert,
        ClientId = "laptop", SpaceId = Team, ReceivedAt = DateTimeOffset.UtcNow,
        Data = JsonDocument.Parse($$"""{"n":1,"spaceId":"{{Team}}"}""").RootElement,
    };

}
