using System.Net;
using System.Net.Http.Headers;
using System.Text.Json.Nodes;
using ManaSync.Testing;
using Npgsql;
using Xunit;
using static ManaSync.Testing.Changes;

namespace ManaSync.Tests.Hosting;

/// <summary>The server's own command line, run on the built dll against a real database.</summary>
public sealed class CommandTests : IAsyncLifetime
{
    private string _database = null!;
    private ServerProcess _server = null!;
    private FakeManaServices _services = null!;

    public async Task InitializeAsync()
    {
        _database = await TestCluster.CreateDatabaseAsync();
        _services = await FakeManaServices.StartAsync();
        _services.Spaces["alice"] = ["team-1"];
        _server = await ServerProcess.StartAsync(_database,
            new Dictionary<string, string> { ["MANA_AUTH_URL"] = _services.Url, ["MANA_CREDITS_URL"] = _services.Url });
        var alice = await _server.ClientForAsync("alice", "laptop");
        (await alice.PushAsync("todo", Batch(
            Insert("tasks", "t1", new { title = "one", updatedAt = "2026-01-01T10:00:00.000Z" }),
            Update("tasks", "t1", "title", "two", "2026-01-01T10:01:00.000Z"),
            Insert("tasks", "t2", new { title = "gone" }),
            Delete("tasks", "t2")))).AssertStatus(HttpStatusCode.OK);
        (await alice.PushAsync("notes", Batch(Insert("notes", "n1", new { text = "hi" })))).AssertStatus(HttpStatusCode.OK);
        (await (await _server.ClientForAsync("bob")).PushAsync("todo", Batch(Insert("tasks", "b1", new { })))).AssertStatus(HttpStatusCode.OK);
    }

    public async Task DisposeAsync()
    {
        await _server.DisposeAsync();
        await _services.DisposeAsync();
    }

    [Fact]
    public async Task Replay_writes_the_users_events_as_json_lines_to_standard_output()
    {
        var all = await ServerProcess.RunCommandAsync(_database, "replay", "--user", "alice");
        var todo = await ServerProcess.RunCommandAsync(_database, "replay", "--user", "alice", "--app", "todo");
        var none = await ServerProcess.RunCommandAsync(_database, "replay", "--user", "alice", "--until", "2000-01-01T00:00:00Z");

        Assert.Equal(0, all.ExitCode);
        var lines = all.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(line => JsonNode.Parse(line)!.AsObject()).ToList();
        Assert.Equal(5, lines.Count);
        Assert.Equal(["insert", "update", "insert", "delete", "insert"], lines.Select(l => l["op"]!.GetValue<string>()));
        Assert.Equal(4, todo.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
        Assert.Equal("", none.Output);
    }

    [Fact]
    public async Task Verify_accepts_an_export_and_refuses_a_damaged_one()
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/backup/export");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", (await _server.ClientForAsync("alice")).Token);
        using var response = await _server.Client.SendAsync(request);
        var archive = await response.Content.ReadAsByteArrayAsync();
        var good = Path.GetTempFileName();
        var bad = Path.GetTempFileName();
        await File.WriteAllBytesAsync(good, archive);
        await File.WriteAllBytesAsync(bad, archive[..(archive.Length / 2)]);

        var accepted = await ServerProcess.RunCommandAsync(_database, "verify", good);
        var refused = await ServerProcess.RunCommandAsync(_database, "verify", bad);

        Assert.Equal(0, accepted.ExitCode);
        Assert.Contains("5 events of alice", accepted.Output);
        Assert.NotEqual(0, refused.ExitCode);
    }

    [Fact]
    public async Task A_rebuild_after_the_view_is_lost_restores_it_and_clients_cursors_stay_valid()
    {
        var alice = await _server.ClientForAsync("alice", "phone");
        // A record moved into a space: its change is applied to the view it left and to the one it entered.
        (await alice.PushAsync("todo", Batch(
            Insert("tasks", "t3", new { title = "mine", updatedAt = "2026-01-01T10:00:00.000Z" }),
            new Dictionary<string, object?>
            {
                ["table"] = "tasks", ["id"] = "t3", ["op"] = "update", ["spaceId"] = "team-1",
                ["fields"] = new Dictionary<string, object> { ["title"] = new { value = "ours", updatedAt = "2026-01-01T10:02:00.000Z" } },
            }))).AssertStatus(HttpStatusCode.OK);
        var (before, cursor) = await alice.PullAllAsync("todo", "tasks");
        Assert.Equal(2, (await ViewAsync()).Count(row => row.Contains("\"t3\"")));
        var viewBefore = await ViewAsync();

        await ExecuteAsync("truncate manasync.mt_doc_recordview");
        var rebuild = await ServerProcess.RunCommandAsync(_database, "projections", "--rebuild");
        var (after, _) = await alice.PullAllAsync("todo", "tasks");
        var (sinceCursor, _) = await alice.PullAllAsync("todo", "tasks", cursor);

        Assert.True(rebuild.ExitCode == 0, rebuild.Errors + rebuild.Output);
        Assert.Equal(viewBefore, await ViewAsync());
        Assert.Equal(before.Select(c => c.ToJsonString()), after.Select(c => c.ToJsonString()));
        Assert.Empty(sinceCursor);
    }

    [Fact]
    public async Task A_rebuild_over_many_pages_of_events_starts_from_no_views_and_reproduces_every_one()
    {
        // 1,600 events, three and more of the rebuild's pages, each record written in every batch: a page's merge
        // must start from what the pages before it stored.
        var carol = await _server.ClientForAsync("carol", "tablet");
        for (var batch = 0; batch < 32; batch++)
        {
            var stamp = new DateTime(2026, 1, 1, 10, 0, 0, DateTimeKind.Utc).AddMinutes(batch).ToString("yyyy-MM-ddTHH:mm:ss.fffZ");
            var changes = Enumerable.Range(0, 50).Select(record => batch == 0
                ? Insert("tasks", $"c{record}", new { title = "first", order = record, updatedAt = stamp })
                : Update("tasks", $"c{record}", batch % 2 == 0 ? "title" : "order", $"write {batch}", stamp)).ToArray();
            (await carol.PushAsync("todo", Batch(changes))).AssertStatus(HttpStatusCode.OK);
        }
        var viewBefore = await ViewAsync();
        // A view no event made, and a lost one: the rebuild must drop the first and bring back the second.
        await ExecuteAsync("update manasync.mt_doc_recordview set id = 'stray' where id like '%\"c7\"]'");

        var rebuild = await ServerProcess.RunCommandAsync(_database, "projections", "--rebuild");

        Assert.True(rebuild.ExitCode == 0, rebuild.Errors + rebuild.Output);
        Assert.Equal(viewBefore, await ViewAsync());
        Assert.Contains(viewBefore, row => row.Contains("\"c49\"") && row.Contains("write 31") && row.Contains("write 30"));
    }

    private async Task ExecuteAsync(string sql)
    {
        await using var connection = new NpgsqlConnection(_database);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }

    /// <summary>Every view row, as stored (the database's superuser sees all).</summary>
    private async Task<List<string>> ViewAsync()
    {
        await using var connection = new NpgsqlConnection(_database);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(
            "select id || ' ' || position_tx || ' ' || position_index || ' ' || data::text from manasync.mt_doc_recordview order by id", connection);
        var rows = new List<string>();
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync()) rows.Add(reader.GetString(0));
        return rows;
    }
}
