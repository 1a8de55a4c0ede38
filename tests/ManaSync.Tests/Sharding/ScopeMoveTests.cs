using System.Collections.Concurrent;
using System.Net;
using ManaSync.Testing;
using Npgsql;
using Xunit;
using static ManaSync.Testing.Changes;

namespace ManaSync.Tests.Sharding;

/// <summary>
/// `shards move` while devices push and a reader pages: the scope's events and records arrive whole in the new shard,
/// none twice, the reader sees every change once across the move, and writers see at most a retryable 503.
/// </summary>
public sealed class ScopeMoveTests(ShardedFixture app) : ShardedTest(app)
{

    [Fact]
    public async Task A_scope_moved_under_pushes_and_paging_loses_and_repeats_nothing()
    {
        var acknowledged = new ConcurrentBag<string>();
        var refusals = new ConcurrentBag<HttpStatusCode>();
        using var stop = new CancellationTokenSource();
        var writers = Enumerable.Range(0, 3).Select(writer => Task.Run(async () =>
        {
            var device = App.ClientFor(User, $"writer-{writer}");
            for (var batch = 0; !stop.IsCancellationRequested || batch < 5; batch++)
            {
                var ids = Enumerable.Range(0, 4).Select(i => $"w{writer}-b{batch}-r{i}").ToList();
                // Own records, and one of the team's: the team's shard stays where it is.
                var changes = ids.Select((id, i) => (object)Insert("tasks", id, new { id, spaceId = i == 3 ? Team : null })).ToArray();
                while (true)
                {
                    var reply = await device.PushAsync("todo", Batch(changes));
                    if (reply.Status == HttpStatusCode.OK) break;
                    refusals.Add(reply.Status);
                    await Task.Delay(100);
                }
                foreach (var id in ids) acknowledged.Add(id);
            }
        })).ToList();

        var seen = new List<string>();
        var reader = App.ClientFor(User, "reader");
        string? cursor = null;
        async Task PageAsync()
        {
            var page = (await reader.PullAsync("todo", "tasks", cursor, limit: 7)).AssertStatus(HttpStatusCode.OK);
            seen.AddRange(page.Changes.Select(change => change["id"]!.GetValue<string>()));
            cursor = page.Cursor;
        }
        var reading = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested) await PageAsync();
        });

        await Task.Delay(1000);
        var move = await ServerProcess.RunCommandAsync(App.ConnectionString, App.ShardSettings, "shards", "move", User, "s2", "--grace", "1");
        await Task.Delay(1000);
        stop.Cancel();
        await Task.WhenAll(writers);
        await reading;
        var (rest, _) = await reader.PullAllAsync("todo", "tasks", cursor);
        seen.AddRange(rest.Select(change => change["id"]!.GetValue<string>()));
        var where = await ServerProcess.RunCommandAsync(App.ConnectionString, App.ShardSettings, "shards", "where", User);

        Assert.True(move.ExitCode == 0, move.Errors);
        Assert.Equal("s2", where.Output.Trim());
        Assert.All(refusals, status => Assert.Equal(HttpStatusCode.ServiceUnavailable, status));
        Assert.Equal(acknowledged.Order(), seen.Order());
        var own = acknowledged.Count(id => !id.EndsWith("-r3"));
        Assert.Equal(own, await CountAsync(App.Shard2, "select count(*) from manasync.mt_events where data ->> 'recordScope' = $1", "u:" + User));
        Assert.Equal(own, await CountAsync(App.Shard2, "select count(*) from manasync.mt_doc_recordview where scope = $1", "u:" + User));
        Assert.Equal(0, await CountAsync(App.ConnectionString, "select count(*) from manasync.mt_events where data ->> 'recordScope' = $1", "u:" + User));
        Assert.Equal(0, await CountAsync(App.ConnectionString, "select count(*) from manasync.mt_doc_recordview where scope = $1", "u:" + User));
        // A device that never synced gets each record once, from where it lives now.
        var (fresh, _) = await App.ClientFor(User, "new-phone").PullAllAsync("todo", "tasks");
        Assert.Equal(acknowledged.Order(), fresh.Select(change => change["id"]!.GetValue<string>()).Order());
    }

}
