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
[Collection(ShardedCollection.Name)]
public sealed class ScopeMoveTests(ShardedFixture app) : IAsyncLifetime
{
    private readonly string _user = UniqueIds.New("mover");
    private readonly string _team = UniqueIds.New("team");

    public async Task InitializeAsync()
    {
        app.Services.Spaces[_user] = [_team];
        await app.PlaceAsync(("u:" + _user, "main"), ("s:" + _team, "s2"));
    }

    public Task DisposeAsync() => Task.CompletedTask;

    [Fact]
    public async Task A_scope_moved_under_pushes_and_paging_loses_and_repeats_nothing()
    {
        var acknowledged = new ConcurrentBag<string>();
        var refusals = new ConcurrentBag<HttpStatusCode>();
        using var stop = new CancellationTokenSource();
        var writers = Enumerable.Range(0, 3).Select(writer => Task.Run(async () =>
        {
            var device = app.ClientFor(_user, $"writer-{writer}");
            for (var batch = 0; !stop.IsCancellationRequested || batch < 5; batch++)
            {
                var ids = Enumerable.Range(0, 4).Select(i => $"w{writer}-b{batch}-r{i}").ToList();
                // Own records, and one of the team's: the team's shard stays where it is.
                var changes = ids.Select((id, i) => (object)Insert("tasks", id, new { id, spaceId = i == 3 ? _team : null })).ToArray();
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
        var reader = app.ClientFor(_user, "reader");
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
        var move = await ServerProcess.RunCommandAsync(app.ConnectionString, app.ShardSettings, "shards", "move", _user, "s2", "--grace", "1");
        await Task.Delay(1000);
        stop.Cancel();
        await Task.WhenAll(writers);
        await reading;
        var (rest, _) = await reader.PullAllAsync("todo", "tasks", cursor);
        seen.AddRange(rest.Select(change => change["id"]!.GetValue<string>()));
        var where = await ServerProcess.RunCommandAsync(app.ConnectionString, app.ShardSettings, "shards", "where", _user);

        Assert.True(move.ExitCode == 0, move.Errors);
        Assert.Equal("s2", where.Output.Trim());
        Assert.All(refusals, status => Assert.Equal(HttpStatusCode.ServiceUnavailable, status));
        Assert.Equal(acknowledged.Order(), seen.Order());
        var own = acknowledged.Count(id => !id.EndsWith("-r3"));
        Assert.Equal(own, await CountAsync(app.Shard2, "select count(*) from manasync.mt_events where data ->> 'recordScope' = $1", "u:" + _user));
        Assert.Equal(own, await CountAsync(app.Shard2, "select count(*) from manasync.mt_doc_recordview where scope = $1", "u:" + _user));
        Assert.Equal(0, await CountAsync(app.ConnectionString, "select count(*) from manasync.mt_events where data ->> 'recordScope' = $1", "u:" + _user));
        Assert.Equal(0, await CountAsync(app.ConnectionString, "select count(*) from manasync.mt_doc_recordview where scope = $1", "u:" + _user));
        // A device that never synced gets each record once, from where it lives now.
        var (fresh, _) = await app.ClientFor(_user, "new-phone").PullAllAsync("todo", "tasks");
        Assert.Equal(acknowledged.Order(), fresh.Select(change => change["id"]!.GetValue<string>()).Order());
    }

    private static async Task<long> CountAsync(string database, string sql, string parameter)
    {
        await using var connection = new NpgsqlConnection(database);
        await connection.OpenAsync();
        await using var count = new NpgsqlCommand(sql, connection) { Parameters = { new() { Value = parameter } } };
        return (long)(await count.ExecuteScalarAsync())!;
    }
}
