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
public sealed class ShardedCursorTests(ShardedFixture app) : ShardedTest(app)
{

    [Fact]
    public async Task Pushes_land_in_the_shard_of_their_scope_and_one_pull_returns_both()
    {
        var laptop = App.ClientFor(User, "laptop");
        (await laptop.PushAsync("todo", Batch(
            Insert("tasks", "own", new { title = "mine" }),
            Insert("tasks", "shared", new { title = "ours", spaceId = Team })))).AssertStatus(HttpStatusCode.OK);

        var (changes, cursor) = await App.ClientFor(User, "phone").PullAllAsync("todo", "tasks");

        Assert.Equal(["own", "shared"], changes.Select(change => change["id"]!.GetValue<string>()).Order());
        Assert.Equal(1, await CountViewsAsync(App.ConnectionString, "u:" + User));
        Assert.Equal(1, await CountViewsAsync(App.Shard2, "s:" + Team));
        Assert.Equal(0, await CountViewsAsync(App.ConnectionString, "s:" + Team));
        Assert.Matches(Reply.CursorPattern, cursor);
    }

    [Fact]
    public async Task A_reader_paging_across_both_shards_sees_every_change_of_parallel_writers_once()
    {
        const int writersPerShard = 3, batches = 10, batchSize = 5;
        var acknowledged = new ConcurrentBag<string>();
        var writing = Task.WhenAll(Enumerable.Range(0, 2 * writersPerShard).Select(writer => Task.Run(async () =>
        {
            var device = App.ClientFor(User, $"writer-{writer}");
            var space = writer % 2 == 0 ? null : Team;
            for (var batch = 0; batch < batches; batch++)
            {
                var ids = Enumerable.Range(0, batchSize).Select(i => $"w{writer}-b{batch}-r{i}").ToList();
                (await device.PushAsync("todo", Batch(ids.Select(id => (object)Insert("tasks", id, new { id, spaceId = space })).ToArray())))
                    .AssertStatus(HttpStatusCode.OK);
                foreach (var id in ids) acknowledged.Add(id);
            }
        })));

        var reader = App.ClientFor(User, "reader");
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
        var sessions = App.Host.Services.GetRequiredService<CallerSessions>();
        var caller = new Caller(User, [Team]);
        var late = ChangeWriter.StoreAsync(
            new WriteRequest(cancel => sessions.WriteAsync(caller, cancel, "s2"), _ => caller, App.Host.Services.GetRequiredService<ChangeUpcasting>(), TimeSpan.FromMinutes(5),
                TimeProvider.System, BeforeCommit: async (_, _) =>
                {
                    stored.SetResult();
                    await release.Task;
                }),
            [IncomingChangeFor("late", Team)], CancellationToken.None);
        // (A write that failed before storing would never get there.)
        Assert.Same(stored.Task, await Task.WhenAny(stored.Task, late));

        // main commits a later stamp meanwhile.
        (await App.ClientFor(User, "fast").PushAsync("todo", Batch(Insert("tasks", "early", new { n = 2 })))).AssertStatus(HttpStatusCode.OK);
        var reader = App.ClientFor(User, "reader");
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
        var laptop = App.DeviceFor(User, "laptop", "todo", ["tasks", "notes"]);
        var phone = App.DeviceFor(User, "phone", "todo", ["tasks", "notes"]);
        for (var round = 0; round < 5; round++)
        {
            laptop.Create("tasks", new JsonObject { ["id"] = $"own-{round}", ["title"] = "mine" });
            laptop.Create("notes", new JsonObject { ["id"] = $"team-{round}", ["text"] = "ours", ["spaceId"] = Team });
            phone.Create("tasks", new JsonObject { ["id"] = $"phone-{round}", ["title"] = "from the phone", ["spaceId"] = Team });
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
        SchemaVersion = 1, UserId = User, AppId = "todo", Table = "tasks", RecordId = id, Op = ChangeOp.Insert, ClientId = "slow",
        SpaceId = space, Data = JsonDocument.Parse($$"""{"id":"{{id}}","spaceId":"{{space}}"}""").RootElement, ReceivedAt = DateTimeOffset.UtcNow,
    };

}
