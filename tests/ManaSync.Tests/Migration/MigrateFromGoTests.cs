using System.Text.Json.Nodes;
using ManaSync.Testing;
using Npgsql;
using Xunit;

namespace ManaSync.Tests.Migration;

/// <summary>
/// `migrate-from-go` against a database laid out as the Go service left it, run on the built server:
/// every change arrives once, however often it runs; pulls give what the Go service's rules gave (its
/// rows, visible to a user when they wrote them or they belong to one of their spaces, applied by the
/// deployed client in order); and cursors devices got from the Go service keep working.
/// </summary>
public sealed class MigrateFromGoTests : IAsyncLifetime
{
    private static readonly DateTimeOffset T0 = new(2026, 11, 1, 10, 0, 0, TimeSpan.Zero);
    private const string Team = "team-1";
    private static readonly Dictionary<string, string[]> SpacesOf = new() { ["alice"] = [Team], ["bob"] = [Team], ["carol"] = [] };
    private static readonly Dictionary<string, string[]> TablesOf = new() { ["todo"] = ["tasks"], ["notes"] = ["notes"] };

    private string _database = null!;
    private FakeManaServices _services = null!;

    public async Task InitializeAsync()
    {
        _database = await TestCluster.CreateDatabaseAsync();
        _services = await FakeManaServices.StartAsync();
        foreach (var (user, spaces) in SpacesOf) _services.Spaces[user] = spaces;
    }

    public async Task DisposeAsync() => await _services.DisposeAsync();

    private static string At(int minutes, int seconds = 0) => DeployedClient.Iso(T0.AddMinutes(minutes).AddSeconds(seconds));

    private static JsonObject Json(string json) => JsonNode.Parse(json)!.AsObject();

    private static GoChangeRow Row(int minute, string user, string app, string table, string id, string op, string? data,
        string? stamps = null, string? space = null, string? actor = null, int schemaVersion = 1) =>
        new(Guid.NewGuid(), app, table, id, user, op, data is null ? null : Json(data), stamps is null ? null : Json(stamps),
            user + "-laptop", T0.AddMinutes(minute), actor is null ? null : Json(actor), schemaVersion, space);

    /// <summary>Several users, apps and a shared space; every op; old rows without actor or schema version.</summary>
    private static List<GoChangeRow> History() =>
    [
        Row(0, "alice", "todo", "tasks", "t1", "insert", $$"""{"id":"t1","title":"milk","done":false,"updatedAt":"{{At(0)}}"}""", schemaVersion: 0),
        Row(1, "alice", "todo", "tasks", "t1", "update", """{"title":"oat milk"}""", $$"""{"title":"{{At(1)}}"}""",
            actor: """{"kind":"ai","missionId":"m-1"}"""),
        Row(2, "bob", "todo", "tasks", "b1", "insert", """{"id":"b1","title":"bob's"}"""),
        Row(3, "alice", "todo", "tasks", "t2", "insert", """{"id":"t2","title":"old"}"""),
        Row(4, "alice", "todo", "tasks", "t2", "delete", $$"""{"deletedAt":"{{At(4)}}"}"""),
        Row(5, "alice", "todo", "tasks", "t3", "insert", """{"id":"t3","title":"gone"}"""),
        Row(6, "alice", "todo", "tasks", "t3", "delete", "{}"),
        Row(7, "alice", "notes", "notes", "n1", "insert", """{"id":"n1","text":"hi"}"""),
        Row(8, "alice", "todo", "tasks", "s1", "insert", $$"""{"id":"s1","title":"team task","spaceId":"{{Team}}"}""", space: Team),
        Row(9, "bob", "todo", "tasks", "s1", "update", """{"done":true}""", $$"""{"done":"{{At(9)}}"}""", space: Team),
        Row(10, "carol", "todo", "tasks", "c1", "insert", """{"id":"c1"}"""),
        Row(11, "alice", "todo", "tasks", "t1", "update", """{"done":true,"note":null}""", $$"""{"done":"{{At(11)}}","note":"{{At(11)}}"}"""),
        Row(12, "alice", "todo", "tasks", "t3", "insert", $$"""{"id":"t3","title":"back","updatedAt":"{{At(12)}}"}"""),
    ];

    private async Task<(int ExitCode, string Output, string Errors)> MigrateAsync(string source) =>
        await ServerProcess.RunCommandAsync(_database, "migrate-from-go", "--source", source, "--chunk", "3");

    private async Task<ServerProcess> ServerAsync() => await ServerProcess.StartAsync(_database,
        new Dictionary<string, string> { ["MANA_AUTH_URL"] = _services.Url, ["MANA_CREDITS_URL"] = _services.Url });

    /// <summary>What the deployed client held under the Go service: the rows the user could read, applied in order.</summary>
    private static DeployedClient UnderTheGoService(ServerProcess server, string token, string user, string app, IEnumerable<GoChangeRow> rows,
        Func<DateTimeOffset>? clock = null)
    {
        var device = new DeployedClient(server.Client, token, user, app, user + "-go-device", TablesOf[app], clock ?? (() => DateTimeOffset.UtcNow));
        device.Apply(new JsonArray(rows
            .Where(row => row.AppId == app && (row.UserId == user || row.SpaceId is { } space && SpacesOf[user].Contains(space)))
            .OrderBy(row => row.CreatedAt)
            .Select(row => (JsonNode)row.ToWire())
            .ToArray()));
        return device;
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Migrating_twice_stores_every_change_once_and_pulls_give_what_the_Go_service_gave(bool latestVersion)
    {
        var history = latestVersion ? History() : History().Select(row => row with { Actor = null, SpaceId = null }).ToList();
        var source = await GoServiceDatabase.CreateAsync(latestVersion, history);

        var first = await MigrateAsync(source);
        var second = await MigrateAsync(source);

        Assert.True(first.ExitCode == 0, first.Errors);
        Assert.Contains("13 rows read, 13 stored, 0 already stored; 3 users, 2 apps", first.Output);
        Assert.True(second.ExitCode == 0, second.Errors);
        Assert.Contains("13 rows read, 0 stored, 13 already stored", second.Output);
        var stored = await StoredEventsAsync();
        Assert.Equal(history.Select(row => (row.Id, row.CreatedAt)).Order(), stored.Order());

        await using var server = await ServerAsync();
        foreach (var user in SpacesOf.Keys)
        {
            var token = (await server.ClientForAsync(user)).Token;
            foreach (var (app, tables) in TablesOf)
            {
                var expected = UnderTheGoService(server, token, user, app, history);
                var device = new DeployedClient(server.Client, token, user, app, user + "-new-device", tables, () => DateTimeOffset.UtcNow);
                await device.PullAsync();
                Assert.All(tables, table => Assert.Equal(expected.Rows(table), device.Rows(table)));
            }
        }
    }

    [Fact]
    public async Task A_device_with_a_cursor_of_the_Go_service_receives_what_it_lacked_and_no_more_than_its_chunk()
    {
        var history = History();
        var source = await GoServiceDatabase.CreateAsync(latestVersion: true, history);
        Assert.Equal(0, (await MigrateAsync(source)).ExitCode);
        await using var server = await ServerAsync();
        var token = (await server.ClientForAsync("alice")).Token;

        // The device last pulled from the Go service half a minute after t3 was first inserted.
        var now = T0.AddMinutes(5).AddSeconds(30);
        var cursor = DeployedClient.Iso(now);
        var device = UnderTheGoService(server, token, "alice", "todo", history.Where(row => row.CreatedAt < now), () => now);
        device.RestoreCursor("tasks", cursor);
        now = DateTimeOffset.UtcNow;
        var sinceCursor = await (await server.ClientForAsync("alice")).PullAsync("todo", "tasks", cursor);
        await device.PullAsync();

        Assert.Equal(UnderTheGoService(server, token, "alice", "todo", history).Rows("tasks"), device.Rows("tasks"));
        var ids = sinceCursor.Changes.Select(change => change["id"]!.GetValue<string>()).ToList();
        Assert.Contains("t1", ids);
        Assert.Contains("t3", ids);
        Assert.Contains("s1", ids);
        Assert.DoesNotContain("t2", ids); // last changed two chunks before the cursor
    }

    [Fact]
    public async Task Rows_of_an_app_id_ManaSync_cannot_serve_are_reported_and_not_stored()
    {
        var source = await GoServiceDatabase.CreateAsync(latestVersion: true,
            [Row(0, "alice", "todo", "tasks", "t1", "insert", """{"id":"t1"}"""), Row(1, "alice", "to do:list", "tasks", "t2", "insert", """{"id":"t2"}""")]);

        var run = await MigrateAsync(source);

        Assert.NotEqual(0, run.ExitCode);
        Assert.Contains("1 rows not stored: their app id is not one ManaSync serves", run.Output);
        Assert.Single(await StoredEventsAsync());
    }

    [Fact]
    public async Task A_source_without_the_table_is_refused_with_a_message()
    {
        var empty = await TestCluster.CreateDatabaseAsync();

        var run = await MigrateAsync(empty);

        Assert.NotEqual(0, run.ExitCode);
        Assert.Contains("no sync_changes table", run.Errors);
    }

    /// <summary>Every stored event's id and receive time (the database's superuser sees all).</summary>
    private async Task<List<(Guid, DateTimeOffset)>> StoredEventsAsync()
    {
        await using var connection = new NpgsqlConnection(_database);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("select id, (data ->> 'receivedAt')::timestamptz from manasync.mt_events", connection);
        var events = new List<(Guid, DateTimeOffset)>();
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync()) events.Add((reader.GetGuid(0), reader.GetFieldValue<DateTimeOffset>(1)));
        return events;
    }
}
