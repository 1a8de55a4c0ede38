using System.Net;
using ManaSync.Testing;
using Npgsql;
using Xunit;
using static ManaSync.Testing.Changes;

namespace ManaSync.Tests.Sharding;

/// <summary>Main and two shards in three clusters: one batch writes into all three, and one cursor reads them back.</summary>
public sealed class ThreeShardTests
{
    [Fact]
    public async Task A_batch_across_three_shards_is_stored_in_each_and_one_cursor_pages_through_all()
    {
        var main = await TestCluster.CreateDatabaseAsync(0);
        var s2 = await TestCluster.CreateDatabaseAsync(1);
        var s3 = await TestCluster.CreateDatabaseAsync(2);
        var services = await FakeManaServices.StartAsync();
        await using var _ = services;
        services.Spaces["ivy"] = ["ivy-team", "ivy-club"];
        await using var server = await ServerProcess.StartAsync(main, new Dictionary<string, string>
        {
            ["SHARDS"] = $"s2={s2} s3={s3}", ["MANA_AUTH_URL"] = services.Url, ["MANA_CREDITS_URL"] = services.Url,
        });
        await ShardPlacement.PlaceAsync(main, ("u:ivy", "main"), ("s:ivy-team", "s2"), ("s:ivy-club", "s3"));
        var laptop = await server.ClientForAsync("ivy", "laptop");
        for (var batch = 0; batch < 5; batch++)
            (await laptop.PushAsync("todo", Batch(
                Insert("tasks", $"own-{batch}", new { n = batch }),
                Insert("tasks", $"team-{batch}", new { n = batch, spaceId = "ivy-team" }),
                Insert("tasks", $"club-{batch}", new { n = batch, spaceId = "ivy-club" })))).AssertStatus(HttpStatusCode.OK);

        var phone = await server.ClientForAsync("ivy", "phone");
        var seen = new List<string>();
        string? cursor = null;
        Reply page;
        do
        {
            page = (await phone.PullAsync("todo", "tasks", cursor, limit: 4)).AssertStatus(HttpStatusCode.OK);
            seen.AddRange(page.Changes.Select(change => change["id"]!.GetValue<string>()));
            cursor = page.Cursor;
        } while (page.HasMore);

        Assert.Equal(15, seen.Count);
        Assert.Equal(15, seen.Distinct().Count());
        foreach (var (database, scope) in new[] { (main, "u:ivy"), (s2, "s:ivy-team"), (s3, "s:ivy-club") })
        {
            await using var connection = new NpgsqlConnection(database);
            await connection.OpenAsync();
            await using var count = new NpgsqlCommand("select count(*) from manasync.mt_doc_recordview where scope = $1", connection)
            {
                Parameters = { new() { Value = scope } },
            };
            Assert.Equal(5L, await count.ExecuteScalarAsync());
        }
    }
}
