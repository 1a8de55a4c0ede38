using System.IO.Compression;
using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using ManaSync.Testing;
using Npgsql;
using Xunit;
using static ManaSync.Testing.Changes;

namespace ManaSync.Tests.Sharding;

/// <summary>Export, import and audit of a user whose records live in two shards: own records in main, the team's in s2.</summary>
public sealed class ShardedBackupTests(ShardedFixture app) : ShardedTest(app)
{
    private readonly string _other = UniqueIds.New("erin");

    public override async Task InitializeAsync()
    {
        await base.InitializeAsync();
        App.Services.Spaces[_other] = [Team];
        await App.PlaceAsync(("u:" + _other, "main"));
    }

    [Fact]
    public async Task An_export_holds_theUsers_events_of_every_shard_once_and_its_import_goes_back_to_each()
    {
        (await App.ClientFor(User, "laptop").PushAsync("todo", Batch(
            Insert("tasks", "own", new { title = "mine" }),
            Insert("tasks", "shared", new { title = "ours", spaceId = Team })))).AssertStatus(HttpStatusCode.OK);
        (await App.ClientFor(User, "laptop").PushAsync("todo", Batch(
            Update("tasks", "shared", "title", "ours, renamed", "2030-01-01T00:00:00.000Z")))).AssertStatus(HttpStatusCode.OK);

        var (events, manifest) = Open(await ExportAsync(User));
        Assert.Equal(["own", "shared", "shared"], events.Select(line => line["id"]!.GetValue<string>()).Order());
        Assert.Equal(3, manifest["eventCount"]!.GetValue<int>());

        // The same events as another member's (new eventIds), imported: each goes to the shard of its scope.
        var lines = events.Select(line =>
        {
            line["eventId"] = Guid.NewGuid().ToString();
            line["id"] = "erin-" + line["id"]!.GetValue<string>();
            return line.ToJsonString();
        });
        var body = Encoding.UTF8.GetBytes(string.Join("\n", lines) + "\n");
        manifest["userId"] = _other;
        manifest["eventsSha256"] = Convert.ToHexStringLower(SHA256.HashData(body));
        var archive = ManaArchives.Build(body, manifest.ToJsonString());
        var first = (await App.ImportAsync(_other, archive)).AssertStatus(HttpStatusCode.OK);
        var again = (await App.ImportAsync(_other, archive)).AssertStatus(HttpStatusCode.OK);

        Assert.Equal((3, 0), (first.Json["imported"]!.GetValue<int>(), first.Json["skipped"]!.GetValue<int>()));
        Assert.Equal((0, 3), (again.Json["imported"]!.GetValue<int>(), again.Json["skipped"]!.GetValue<int>()));
        Assert.Equal(1, await CountViewsAsync(App.ConnectionString, "u:" + _other));
        Assert.Equal(1, await CountAsync(App.Shard2, "select count(*) from manasync.mt_doc_recordview where scope = $1 and data ->> 'recordId' = $2",
            "s:" + Team, "erin-shared"));
    }

    [Fact]
    public async Task A_records_history_comes_from_the_shard_it_lives_in()
    {
        var laptop = App.ClientFor(User, "laptop");
        (await laptop.PushAsync("todo", Batch(Insert("tasks", "t1", new { title = "a", spaceId = Team })))).AssertStatus(HttpStatusCode.OK);
        (await laptop.PushAsync("todo", Batch(Update("tasks", "t1", "title", "b", "2030-01-01T00:00:00.000Z")))).AssertStatus(HttpStatusCode.OK);

        var history = (await App.ClientFor(_other, "auditing").SendRawAsync(HttpMethod.Get, "/audit/todo/tasks/t1/history"))
            .AssertStatus(HttpStatusCode.OK);

        Assert.Equal(["insert", "update"], history.Json["events"]!.AsArray().Select(e => e!["op"]!.GetValue<string>()));
    }

    private async Task<byte[]> ExportAsync(string user)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/backup/export");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", App.TokenFor(user));
        using var response = await App.Client.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return await response.Content.ReadAsByteArrayAsync();
    }


    private static (List<JsonObject> Events, JsonObject Manifest) Open(byte[] archive)
    {
        using var zip = new ZipArchive(new MemoryStream(archive), ZipArchiveMode.Read);
        using var events = new StreamReader(zip.GetEntry("events.jsonl")!.Open());
        using var manifest = new StreamReader(zip.GetEntry("manifest.json")!.Open());
        return (events.ReadToEnd().Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(line => JsonNode.Parse(line)!.AsObject()).ToList(),
            JsonNode.Parse(manifest.ReadToEnd())!.AsObject());
    }

}
