using System.Collections.Concurrent;
using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using ManaSync.Events;
using ManaSync.Events.Upcasting;
using ManaSync.Testing;
using ManaSync.Web.Features.WritePath;
using ManaSync.Web.Infrastructure.Isolation;
using Microsoft.Extensions.DependencyInjection;
using Xunit;
using static ManaSync.Testing.Changes;

namespace ManaSync.Tests.Sharding;

/// <summary>
/// One cursor over two shards: alice's own records live in main, her team's in s2. Readers page across both while
/// both are written, a write on one shard commits late, and the deployed client's cursor rules are followed literally.
/// </summary>
[Collection(ShardedCollection.Name)]
public sealed class ShardedCursorTests(ShardedFixture app) : IAsyncLifetime
{
    private readonly string _user = UniqueIds.New("alice");
    private readonly string _team = UniqueIds.New("team");

    public async Task InitializeAsync()
    {
        app.Services.Spaces[_user] = [_team];
        await app.PlaceAsync(("u:" + _user, "main"), ("s:" + _team, "s2"));
    }

    public Task DisposeAsync() => Task.CompletedTask;

    [Fact]
    public async Task Pushes_land_in_the_shard_of_their_scope_and_one_pull_returns_both()
    {
        var laptop = app.ClientFor(_user, "laptop");
        (await laptop.PushAsync("todo", Batch(
            Insert("tasks", "own", new { title = "mine" }),
            Insert("tasks", "shared", new { title = "ours", spaceId = _team })))).AssertStatus(HttpStatusCode.OK);

        var (changes, cursor) = await app.ClientFor(_user, "phone").PullAllAsync("todo", "tasks");

        Assert.Equal(["own", "shared"], changes.Select(change => change["id"]!.GetValue<string>()).Order());
        Assert.Equal(1, await CountViewsAsync(app.ConnectionString, "u:" + _user));
        Assert.Equal(1, await CountViewsAsync(app.Shard2, "s:" + _team));
        Assert.Equal(0, await CountViewsAsync(app.ConnectionString, "s:" + _team));
        Assert.Matches(Reply.CursorPattern, cursor);
    }

    [Fact]
    public async Task A_reader_paging_across_both_shards_sees_every_change_of_parallel_writers_once()
    {
        const int writersPerShard = 3, batches = 10, batchSize = 5;
        var acknowledged = new ConcurrentBag<string>();
        var writing = Task.WhenAll(Enumerable.Range(0, 2 * writersPerShard).Select(writer => Task.Run(async () =>
        {
            var device = app.ClientFor(_user, $"writer-{writer}");
            var space = writer % 2 == 0 ? null : _team;
            for (var batch = 0; batch < batches; batch++)
            {
                var ids = Enumerable.Range(0, batchSize).Select(i => $"w{writer}-b{batch}-r{i}").ToList();
                (await device.PushAsync("todo", Batch(ids.Select(id => (object)Insert("tasks", id, new { id, spaceId = space })).ToArray())))
                    .AssertStatus(HttpStatusCode.OK);
                foreach (var id in ids) acknowledged.Add(id);
            }
        })));

        var reader = app.ClientFor(_user, "reader");
        var seen = new List<string>();
        string? cursor = null;
        while (!writing.IsCompleted)
        {
            var page = (await reader.PullAsync("todo", "tasks", cursor, limit: 7)).AssertStatus(HttpStatusCode.OK);
            seen.AddRange(page.Changes.Select(change => change["id"]!.GetValue<string>()));
            Assert.True(cursor is null || string.CompareOrdinal(page.Cursor, cursor) >= 0, "cursors never go back");
            cursor = page.Cursor;
        }
        await writing;
        var (rest, _) = await reader.PullAllAsync("todo", "tasks", cursor);
        seen.AddRange(rest.Select(change => change["id"]!.GetValue<string>()));

        Assert.Equal(2 * writersPerShard * batches * batchSize, acknowledged.Count);
        Assert.Equal(acknowledged.Order(), seen.Order());
    }

    [Fact]
    public async Task A_write_that_commits_late_on_one_shard_holds_the_cursor_back_until_it_commits()
    {
        // A write into the team's shard takes its stamp, stores its change and waits before committing.
        var release = new TaskCompletionSource();
        var stored = new TaskCompletionSource();
        var sessions = app.Host.Services.GetRequiredService<CallerSessions>();
        var caller = new Caller(_user, [_team]);
        var late = ChangeWriter.StoreAsync(
            new WriteRequest(cancel => sessions.WriteAsync(caller, cancel, "s2"), _ => caller, app.Host.Services.GetRequiredService<ChangeUpcasting>(), TimeSpan.FromMinutes(5),
                TimeProvider.System, BeforeCommit: async (_, _) =>
                {
                    stored.SetResult();
                    await release.Task;
                }),
            [IncomingChangeFor("late", _team)], CancellationToken.None);
        // (A write that failed before storing would never get there.)
        Assert.Same(stored.Task, await Task.WhenAny(stored.Task, late));

        // main commits a later stamp meanwhile.
        (await app.ClientFor(_user, "fast").PushAsync("todo", Batch(Insert("tasks", "early", new { n = 2 })))).AssertStatus(HttpStatusCode.OK);
        var reader = app.ClientFor(_user, "reader");
        var held = (await reader.PullAsync("todo", "tasks")).AssertStatus(HttpStatusCode.OK);

        release.SetResult();
        await late;
        var (rest, _) = await reader.PullAllAsync("todo", "tasks", held.Cursor);

        Assert.Empty(held.Changes);
        Assert.Equal(["early", "late"], rest.Select(change => change["id"]!.GetValue<string>()).Order());
    }

    [Fact]
    public async Task The_deployed_clients_cursor_rules_keep_two_devices_converged_across_shards()
    {
        var laptop = app.DeviceFor(_user, "laptop", "todo", ["tasks", "notes"]);
        var phone = app.DeviceFor(_user, "phone", "todo", ["tasks", "notes"]);
        for (var round = 0; round < 5; round++)
        {
            laptop.Create("tasks", new JsonObject { ["id"] = $"own-{round}", ["title"] = "mine" });
            laptop.Create("notes", new JsonObject { ["id"] = $"team-{round}", ["text"] = "ours", ["spaceId"] = _team });
            phone.Create("tasks", new JsonObject { ["id"] = $"phone-{round}", ["title"] = "from the phone", ["spaceId"] = _team });
            await laptop.PushAllAsync();
            await phone.PushAllAsync();
            await laptop.PullAsync();
            await phone.PullAsync();
        }
        await laptop.PullAsync();
        await phone.PullAsync();

        Assert.Equal(10, laptop.Rows("tasks").Count);
        Assert.Equal(laptop.Rows("tasks").Keys, phone.Rows("tasks").Keys);
        Assert.Equal(laptop.Rows("notes").Keys, phone.Rows("notes").Keys);
        Assert.Equal(5, phone.Rows("notes").Count);
    }

    private IncomingChange IncomingChangeFor(string id, string space) => new()
    {
        SchemaVersion = 1, UserId = _user, AppId = "todo", Table = "tasks", RecordId = id, Op = ChangeOp.Insert, ClientId = "slow",
        SpaceId = space, Data = JsonDocument.Parse($$"""{"id":"{{id}}","spaceId":"{{space}}"}""").RootElement, ReceivedAt = DateTimeOffset.UtcNow,
    };

    private static async Task<long> CountViewsAsync(string database, string scope)
    {
        await using var connection = new Npgsql.NpgsqlConnection(database);
        await connection.OpenAsync();
        await using var count = new Npgsql.NpgsqlCommand("select count(*) from manasync.mt_doc_recordview where scope = $1", connection)
        {
            Parameters = { new() { Value = scope } },
        };
        return (long)(await count.ExecuteScalarAsync())!;
    }
}
