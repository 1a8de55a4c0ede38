using System.IO.Compression;
using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using ManaSync.Testing;
using ManaSync.Tests.Support;
using ManaSync.Web.Features.Backup;
using Xunit;
using static ManaSync.Testing.Changes;

namespace ManaSync.Tests.Backup;

public sealed class BackupTests(AppFixture app) : SyncTest(app)
{
    private async Task<byte[]> ExportAsync(string user)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/backup/export");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", App.TokenFor(user));
        using var response = await App.Client.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("application/zip", response.Content.Headers.ContentType?.MediaType);
        Assert.Matches($"^attachment; filename=\"mana-backup-{user}-[0-9]{{8}}-[0-9]{{6}}\\.mana\"$",
            response.Content.Headers.ContentDisposition?.ToString() ?? response.Headers.GetValues("Content-Disposition").Single());
        return await response.Content.ReadAsByteArrayAsync();
    }

    private static (List<string> Entries, byte[] Events, JsonObject Manifest) Open(byte[] archive)
    {
        using var zip = new ZipArchive(new MemoryStream(archive), ZipArchiveMode.Read);
        using var events = new MemoryStream();
        zip.GetEntry("events.jsonl")!.Open().CopyTo(events);
        using var manifest = new StreamReader(zip.GetEntry("manifest.json")!.Open());
        return (zip.Entries.Select(e => e.FullName).ToList(), events.ToArray(), JsonNode.Parse(manifest.ReadToEnd())!.AsObject());
    }

    private async Task SeedAsync()
    {
        var device = App.ClientFor("alice", "laptop");
        (await device.PushAsync("todo", """
            {"changes":[
              {"table":"tasks","id":"t1","op":"insert","data":{"title":"one","updatedAt":"2026-01-01T10:00:00.000Z"},"actor":{"kind":"ai"}},
              {"table":"tasks","id":"t1","op":"update","fields":{"title":{"value":"two","updatedAt":"2026-01-01T10:01:00.000Z"}}},
              {"table":"tasks","id":"t2","op":"insert","data":{"title":"gone"}},
              {"table":"tasks","id":"t2","op":"delete"},
              {"table":"tasks","id":"t3","op":"insert","data":{"title":"soft"}},
              {"table":"tasks","id":"t3","op":"delete","deletedAt":"2026-01-01T11:00:00.000Z"}]}
            """)).AssertStatus(HttpStatusCode.OK);
        (await device.PushAsync("notes", Batch(Insert("notes", "n1", new { text = "hi" })))).AssertStatus(HttpStatusCode.OK);
    }

    [Fact]
    public async Task The_export_holds_every_event_and_a_manifest_that_describes_it()
    {
        await SeedAsync();

        var (entries, events, manifest) = Open(await ExportAsync("alice"));
        var lines = Encoding.UTF8.GetString(events).Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(line => JsonNode.Parse(line)!.AsObject()).ToList();

        Assert.Equal(["events.jsonl", "manifest.json"], entries);
        Assert.Equal(7, lines.Count);
        Assert.Equal(1, manifest["formatVersion"]!.GetValue<int>());
        Assert.Equal(1, manifest["schemaVersion"]!.GetValue<int>());
        Assert.Equal("alice", manifest["userId"]!.GetValue<string>());
        Assert.Equal(7, manifest["eventCount"]!.GetValue<int>());
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(events)), manifest["eventsSha256"]!.GetValue<string>());
        Assert.Equal(["notes", "todo"], manifest["apps"]!.AsArray().Select(a => a!.GetValue<string>()));
        Assert.Equal("mana-sync", manifest["producedBy"]!.GetValue<string>());
        Assert.Equal(1, manifest["schemaVersionMin"]!.GetValue<int>());
        Assert.Equal(1, manifest["schemaVersionMax"]!.GetValue<int>());
        Assert.True(manifest.ContainsKey("createdAt"));
        Assert.Contains(lines, l => l["op"]!.GetValue<string>() == "delete" && !l.ContainsKey("deletedAt"));
        Assert.Contains(lines, l => l["deletedAt"]?.GetValue<string>() == "2026-01-01T11:00:00.000Z");
        Assert.Equal("""{"kind":"ai"}""", lines[0]["actor"]!.ToJsonString());
        Assert.Equal("2026-01-01T10:01:00.000Z", lines[1]["fieldTimestamps"]!["title"]!.GetValue<string>());
        Assert.All(lines, l => Assert.Equal("laptop", l["clientId"]!.GetValue<string>()));
    }

    [Fact]
    public async Task An_empty_account_exports_an_empty_log_without_version_bounds()
    {
        var (_, events, manifest) = Open(await ExportAsync("nobody"));

        Assert.Empty(events);
        Assert.Equal(0, manifest["eventCount"]!.GetValue<int>());
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData([])), manifest["eventsSha256"]!.GetValue<string>());
        Assert.Empty(manifest["apps"]!.AsArray());
        Assert.False(manifest.ContainsKey("schemaVersionMin"));
        Assert.False(manifest.ContainsKey("schemaVersionMax"));
    }

    [Theory]
    [InlineData("alice", "mana-backup-alice-20260102-030405.mana")]
    [InlineData("a.b@c d/é", "mana-backup-a_b_c_d__-20260102-030405.mana")]
    [InlineData("user_1-x", "mana-backup-user_1-x-20260102-030405.mana")]
    public void The_file_name_keeps_only_safe_characters_of_the_user_id(string user, string expected) =>
        Assert.Equal(expected, BackupArchive.FileName(user, new DateTimeOffset(2026, 1, 2, 3, 4, 5, TimeSpan.Zero)));

    [Fact]
    public async Task Importing_an_archive_twice_stores_nothing_twice()
    {
        await SeedAsync();
        var archive = await ExportAsync("alice");

        var again = (await App.ImportAsync("alice", archive)).AssertStatus(HttpStatusCode.OK);

        Assert.Equal(0, again.Json["imported"]!.GetValue<int>());
        Assert.Equal(7, again.Json["skipped"]!.GetValue<int>());
        Assert.Equal(7, (await App.StoredEventsAsync()).Count);
    }

    [Fact]
    public async Task After_a_restore_a_device_retrying_its_unacknowledged_push_is_answered_200_and_nothing_is_stored_twice()
    {
        // Every op shape, with and without an actor, each with the eventId the device's outbox keeps.
        var outbox = $$$$"""
            {"changes":[
              {"eventId":"{{{{Guid.NewGuid()}}}}","table":"tasks","id":"t1","op":"insert","data":{"title":"one","updatedAt":"2026-01-01T10:00:00.000Z"}},
              {"eventId":"{{{{Guid.NewGuid()}}}}","table":"tasks","id":"t2","op":"insert","data":{"title":"two"},"actor":{"kind":"ai","missionId":"m-1"}},
              {"eventId":"{{{{Guid.NewGuid()}}}}","table":"tasks","id":"t1","op":"update","fields":{"title":{"value":"uno","updatedAt":"2026-01-01T10:01:00.000+01:00"}}},
              {"eventId":"{{{{Guid.NewGuid()}}}}","table":"tasks","id":"t2","op":"update","fields":{"done":{"updatedAt":"2026-01-01T10:02:00Z"}},"actor":{"kind":"ai"}},
              {"eventId":"{{{{Guid.NewGuid()}}}}","table":"tasks","id":"t3","op":"delete","deletedAt":"2026-01-01T11:00:00.000Z","fields":{"updatedAt":{"value":"2026-01-01T11:00:00.000Z","updatedAt":"2026-01-01T11:00:00.000Z"}}},
              {"eventId":"{{{{Guid.NewGuid()}}}}","table":"tasks","id":"t4","op":"delete","deletedAt":"2026-01-01T11:00:00.000Z","actor":{"kind":"ai"}},
              {"eventId":"{{{{Guid.NewGuid()}}}}","table":"tasks","id":"t5","op":"delete"},
              {"eventId":"{{{{Guid.NewGuid()}}}}","table":"tasks","id":"t6","op":"delete","actor":{"kind":"ai"}}]}
            """;
        var device = App.ClientFor("alice", "laptop");
        (await device.PushAsync("todo", outbox)).AssertStatus(HttpStatusCode.OK);
        var before = await StateAsync();
        var archive = await ExportAsync("alice");

        // The database is lost and restored from the backup; the device never saw the push acknowledged.
        await App.ResetAsync();
        (await App.ImportAsync("alice", archive)).AssertStatus(HttpStatusCode.OK);
        var retry = (await device.PushAsync("todo", outbox)).AssertStatus(HttpStatusCode.OK);

        Assert.Empty(retry.Json["conflicts"]!.AsArray());
        Assert.Equal(8, (await App.StoredEventsAsync()).Count);
        Assert.Equal(before, await StateAsync());
        var again = (await App.ImportAsync("alice", archive)).AssertStatus(HttpStatusCode.OK);
        Assert.Equal(8, again.Json["skipped"]!.GetValue<int>());
    }

    [Fact]
    public async Task An_import_whose_record_is_written_in_two_chunks_keeps_what_both_wrote()
    {
        // More lines than one chunk holds, the first and the last writing one record: the second chunk must merge into
        // what the first stored in the same, uncommitted transaction.
        var changes = new List<object> { Insert("tasks", "t1", new { title = "first chunk", updatedAt = "2026-01-01T10:00:00.000Z" }) };
        changes.AddRange(Enumerable.Range(0, 600).Select(i => Insert("tasks", $"filler-{i}", new { title = "x" })));
        changes.Add(Update("tasks", "t1", "done", true, "2026-01-01T10:05:00.000Z"));
        (await App.ClientFor("alice", "laptop").PushAsync("todo", Batch([.. changes]))).AssertStatus(HttpStatusCode.OK);
        var before = await StateAsync();
        var archive = await ExportAsync("alice");

        await App.ResetAsync();
        (await App.ImportAsync("alice", archive)).AssertStatus(HttpStatusCode.OK);

        Assert.Equal(before, await StateAsync());
        Assert.Contains("first chunk", before);
    }

    [Fact]
    public async Task A_tampered_archive_is_refused_and_stores_nothing()
    {
        await SeedAsync();
        var archive = await ExportAsync("alice");
        await App.ResetAsync();
        var (_, events, manifest) = Open(archive);
        var altered = Encoding.UTF8.GetBytes(Encoding.UTF8.GetString(events).Replace("\"two\"", "\"evil\""));

        var reply = await App.ImportAsync("alice", ManaArchives.Build(altered, manifest.ToJsonString()));

        reply.AssertStatus(HttpStatusCode.BadRequest);
        Assert.Contains("eventsSha256", reply.Json["message"]!.GetValue<string>());
        Assert.Empty(await App.StoredEventsAsync());
    }

    [Fact]
    public async Task A_consistent_but_invalid_archive_is_refused_too()
    {
        var line = Encoding.UTF8.GetBytes("""{"eventId":"nope","schemaVersion":1,"appId":"todo","table":"t","id":"x","op":"insert","clientId":"","createdAt":"2026-01-01T00:00:00Z"}""" + "\n");
        var manifest = $$"""{"formatVersion":1,"schemaVersion":1,"userId":"alice","createdAt":"2026-01-01T00:00:00.000Z","eventCount":1,"eventsSha256":"{{Convert.ToHexStringLower(SHA256.HashData(line))}}","apps":["todo"],"producedBy":"mana-sync"}""";

        var reply = await App.ImportAsync("alice", ManaArchives.Build(line, manifest));

        reply.AssertStatus(HttpStatusCode.BadRequest);
        Assert.Contains("line 1", reply.Json["message"]!.GetValue<string>());
        Assert.Empty(await App.StoredEventsAsync());
    }

    [Fact]
    public async Task An_archive_whose_events_name_an_app_its_manifest_leaves_out_is_refused()
    {
        await SeedAsync();
        var archive = await ExportAsync("alice");
        await App.ResetAsync();
        var (_, events, manifest) = Open(archive);
        manifest["apps"] = new JsonArray("notes");

        var reply = await App.ImportAsync("alice", ManaArchives.Build(events, manifest.ToJsonString()));

        reply.AssertStatus(HttpStatusCode.BadRequest);
        Assert.Contains("\"todo\" is not among the manifest's apps", reply.Json["message"]!.GetValue<string>());
        Assert.Empty(await App.StoredEventsAsync());
    }

    [Fact]
    public async Task Another_users_archive_or_no_archive_at_all_is_refused()
    {
        await SeedAsync();
        var archive = await ExportAsync("alice");

        (await App.ImportAsync("bob", archive)).AssertStatus(HttpStatusCode.Forbidden);
        (await App.ImportAsync("bob", "not a zip"u8.ToArray())).AssertStatus(HttpStatusCode.BadRequest);
        Assert.DoesNotContain(await App.StoredEventsAsync(), e => e.UserId == "bob");
    }

    [Fact]
    public async Task Importing_into_an_empty_account_reproduces_the_pulled_state()
    {
        await SeedAsync();
        var before = await StateAsync();
        var archive = await ExportAsync("alice");
        await App.ResetAsync();

        var reply = (await App.ImportAsync("alice", archive)).AssertStatus(HttpStatusCode.OK);

        Assert.Equal(7, reply.Json["imported"]!.GetValue<int>());
        Assert.Equal(before, await StateAsync());
    }

    [Fact]
    public async Task An_import_announces_each_app_it_wrote_to_every_node()
    {
        await SeedAsync();
        var archive = await ExportAsync("alice");
        await App.ResetAsync();
        await using var listener = await CommitListener.StartAsync(App.ConnectionString);

        (await App.ImportAsync("alice", archive)).AssertStatus(HttpStatusCode.OK);
        var commits = new[] { await listener.NextOfAsync("alice"), await listener.NextOfAsync("alice") };

        Assert.Equal(["notes", "todo"], commits.Select(commit => commit.AppId).Order());
        Assert.Equal(["tasks"], commits.Single(commit => commit.AppId == "todo").Tables);
    }

    /// <summary>What a fresh device of alice holds after pulling everything, by table and id.</summary>
    private async Task<string> StateAsync()
    {
        var state = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var (app, table) in new[] { ("todo", "tasks"), ("notes", "notes") })
        {
            var (changes, _) = await App.ClientFor("alice", "fresh-" + Guid.NewGuid()).PullAllAsync(app, table);
            foreach (var change in changes) state[$"{app}/{table}/{change["id"]}"] = change.ToJsonString();
        }
        return string.Join('\n', state.Select(entry => entry.Key + " " + entry.Value));
    }
}
