using System.Net;
using ManaSync.Testing;
using Npgsql;
using Xunit;
using static ManaSync.Testing.Changes;

namespace ManaSync.Tests.Sharding;

/// <summary>
/// A deployment that adds a shard: main in one cluster, s2 in another. The server sets every shard up as it sets up
/// main, records the scopes main already held as main's, and places new scopes by weight (PROTOCOL §12).
/// </summary>
public sealed class ShardTopologyTests
{
    [Fact]
    public async Task Adding_a_shard_sets_it_up_keeps_existing_scopes_in_main_and_places_new_ones_by_weight()
    {
        var main = await TestCluster.CreateDatabaseAsync(0);
        var s2 = await TestCluster.CreateDatabaseAsync(1);
        await using (var unsharded = await ServerProcess.StartAsync(main))
        {
            var alice = await unsharded.ClientForAsync("alice", "laptop");
            (await alice.PushAsync("todo", Batch(Insert("tasks", "t1", new { title = "before shards" })))).AssertStatus(HttpStatusCode.OK);
        }

        // main takes no new scopes: every new one goes to s2.
        var sharded = new Dictionary<string, string> { ["SHARDS"] = $"s2={s2}", ["SHARD_WEIGHTS"] = "main=0" };
        await using (var server = await ServerProcess.StartAsync(main, sharded))
        {
            Assert.Equal(HttpStatusCode.OK, (await server.Client.GetAsync("/health")).StatusCode);
        }

        Assert.Equal((true, true), await RowSecurityOfViewsAsync(s2));
        Assert.Equal("main", await Scalar<string>(main, "select shard from manasync.shard_map where scope = 'u:alice'"));

        var whereAlice = await ServerProcess.RunCommandAsync(main, sharded, "shards", "where", "alice");
        var whereBob = await ServerProcess.RunCommandAsync(main, sharded, "shards", "where", "bob");
        var list = await ServerProcess.RunCommandAsync(main, sharded, "shards", "list");
        Assert.Equal((0, "main"), (whereAlice.ExitCode, whereAlice.Output.Trim()));
        Assert.Equal((0, "s2"), (whereBob.ExitCode, whereBob.Output.Trim()));
        Assert.Equal(0, list.ExitCode);
        Assert.Equal(["main\tscopes=1\tevents=1", "s2\tscopes=0\tevents=0"], list.Output.Trim().Split('\n'));
    }

    [Fact]
    public async Task A_bad_shard_setting_stops_start_up_naming_the_variable()
    {
        var main = await TestCluster.CreateDatabaseAsync(0);
        var refused = await ServerProcess.RunCommandAsync(main, new Dictionary<string, string> { ["SHARDS"] = "main=postgres://h/db" }, "shards", "list");
        var weights = await ServerProcess.RunCommandAsync(main,
            new Dictionary<string, string> { ["SHARDS"] = $"s2={main}", ["SHARD_WEIGHTS"] = "s9=1" }, "shards", "list");

        Assert.Equal(2, refused.ExitCode);
        Assert.Contains("SHARDS", refused.Errors);
        Assert.Equal(2, weights.ExitCode);
        Assert.Contains("SHARD_WEIGHTS", weights.Errors);
        Assert.Contains("'s9' is not a shard", weights.Errors);
    }

    [Fact]
    public async Task A_projection_rebuild_rebuilds_every_shard_and_a_migration_from_go_waits_for_shards_to_be_unset()
    {
        var main = await TestCluster.CreateDatabaseAsync(0);
        var s2 = await TestCluster.CreateDatabaseAsync(1);
        var sharded = new Dictionary<string, string> { ["SHARDS"] = $"s2={s2}" };
        await using (var server = await ServerProcess.StartAsync(main, sharded))
        {
            await ShardPlacement.PlaceAsync(main, ("u:gil", "s2"), ("u:hal", "main"));
            (await (await server.ClientForAsync("gil")).PushAsync("todo", Batch(
                Insert("tasks", "g1", new { title = "one" }), Update("tasks", "g1", "title", "two", "2030-01-01T00:00:00.000Z")))).AssertStatus(HttpStatusCode.OK);
            (await (await server.ClientForAsync("hal")).PushAsync("todo", Batch(Insert("tasks", "h1", new { title = "three" })))).AssertStatus(HttpStatusCode.OK);
        }
        var (mainBefore, s2Before) = (await ViewsAsync(main), await ViewsAsync(s2));
        // Views lost in both shards: only a rebuild of each brings them back.
        await Execute(main, "delete from manasync.mt_doc_recordview");
        await Execute(s2, "delete from manasync.mt_doc_recordview");

        var rebuild = await ServerProcess.RunCommandAsync(main, sharded, "projections", "--rebuild");
        var migrate = await ServerProcess.RunCommandAsync(main, sharded, "migrate-from-go", "--source", main);

        Assert.True(rebuild.ExitCode == 0, rebuild.Errors);
        Assert.Equal(mainBefore, await ViewsAsync(main));
        Assert.Equal(s2Before, await ViewsAsync(s2));
        Assert.Equal(["h1"], mainBefore.Select(view => view.Id));
        Assert.Equal(["g1"], s2Before.Select(view => view.Id));
        Assert.NotEqual(0, migrate.ExitCode);
        Assert.Contains("unset SHARDS", migrate.Errors);
    }

    private static async Task<List<(string Id, long Position, string Data)>> ViewsAsync(string database)
    {
        await using var connection = new NpgsqlConnection(database);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(
            "select data ->> 'recordId', position_tx, (data -> 'fields')::text from manasync.mt_doc_recordview order by 1", connection);
        await using var reader = await command.ExecuteReaderAsync();
        var views = new List<(string, long, string)>();
        while (await reader.ReadAsync()) views.Add((reader.GetString(0), reader.GetInt64(1), reader.GetString(2)));
        return views;
    }

    private static async Task Execute(string database, string sql)
    {
        await using var connection = new NpgsqlConnection(database);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }

    private static async Task<(bool Enabled, bool Forced)> RowSecurityOfViewsAsync(string database)
    {
        await using var connection = new NpgsqlConnection(database);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(
            "select relrowsecurity, relforcerowsecurity from pg_class where oid = 'manasync.mt_doc_recordview'::regclass", connection);
        await using var reader = await command.ExecuteReaderAsync();
        await reader.ReadAsync();
        return (reader.GetBoolean(0), reader.GetBoolean(1));
    }

    private static async Task<T> Scalar<T>(string database, string sql)
    {
        await using var connection = new NpgsqlConnection(database);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        return (T)(await command.ExecuteScalarAsync())!;
    }
}
