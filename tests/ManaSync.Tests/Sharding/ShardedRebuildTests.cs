using System.Net;
using ManaSync.Web.Features.Rebuild;
using Microsoft.Extensions.DependencyInjection;
using Xunit;
using static ManaSync.Testing.Changes;

namespace ManaSync.Tests.Sharding;

/// <summary>The record view rebuilt while serving, on two shards: each shard's view is rebuilt and switched in turn.</summary>
public sealed class ShardedRebuildTests(ShardedFixture app) : ShardedTest(app)
{
    [Fact]
    public async Task A_rebuild_switches_every_shard_and_a_reader_of_both_gets_nothing_again_but_what_is_new()
    {
        var laptop = App.ClientFor(User, "laptop");
        (await laptop.PushAsync("todo", Batch(Enumerable.Range(0, 20)
            .SelectMany(i => new object[] { Insert("tasks", $"own-{i}", new { i }), Insert("tasks", $"team-{i}", new { i, spaceId = Team }) })
            .ToArray()))).AssertStatus(HttpStatusCode.OK);
        var phone = App.ClientFor(User, "phone");
        var (before, cursor) = await phone.PullAllAsync("todo", "tasks");

        var end = await App.Host.Services.GetRequiredService<ViewRebuilder>().RunAsync(false, null, CancellationToken.None);
        (await laptop.PushAsync("todo", Batch(Insert("tasks", "own-new", new { i = 1 }), Insert("tasks", "team-new", new { i = 2, spaceId = Team }))))
            .AssertStatus(HttpStatusCode.OK);
        var (after, _) = await phone.PullAllAsync("todo", "tasks", cursor);

        Assert.Equal("switched", end.State);
        Assert.Equal(40, before.Count);
        Assert.Equal(["own-new", "team-new"], after.Select(change => change["id"]!.GetValue<string>()).Order());
        Assert.Equal(21, await CountViewsAsync(App.ConnectionString, "u:" + User));
        Assert.Equal(21, await CountViewsAsync(App.Shard2, "s:" + Team));
        Assert.Equal(0, await CountAsync(App.Shard2, "select count(*) from pg_tables where tablename = 'recordview_next'"));
    }
}
