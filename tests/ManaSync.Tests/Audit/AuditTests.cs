using System.Net;
using System.Text.Json.Nodes;
using ManaSync.Testing;
using ManaSync.Tests.Support;
using ManaSync.Web.Features.Audit;
using ManaSync.Web.Infrastructure.Isolation;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using Xunit;
using static ManaSync.Testing.Changes;

namespace ManaSync.Tests.Audit;

public sealed class AuditTests(AppFixture app) : SyncTest(app)
{
    private async Task<(DateTimeOffset AfterInsert, DateTimeOffset AfterUpdates)> SeedAsync()
    {
        var device = App.ClientFor("alice", "laptop");
        (await device.PushAsync("todo", Batch(Insert("tasks", "t1", new { title = "draft", updatedAt = "2026-01-01T10:00:00.000Z" }))))
            .AssertStatus(HttpStatusCode.OK);
        var afterInsert = DateTimeOffset.UtcNow;
        await Task.Delay(50);
        (await App.ClientFor("alice", "phone").PushAsync("todo", Batch(
            Update("tasks", "t1", "title", "final", "2026-01-01T10:05:00.000Z"),
            Update("tasks", "t1", "title", "stale", "2026-01-01T09:00:00.000Z")))).AssertStatus(HttpStatusCode.OK);
        var afterUpdates = DateTimeOffset.UtcNow;
        await Task.Delay(50);
        (await device.PushAsync("todo", Batch(Delete("tasks", "t1")))).AssertStatus(HttpStatusCode.OK);
        return (afterInsert, afterUpdates);
    }

    [Fact]
    public async Task History_lists_every_event_with_each_fields_value_before_and_after()
    {
        await SeedAsync();

        var reply = (await App.ClientFor("alice").SendRawAsync(HttpMethod.Get, "/audit/todo/tasks/t1/history")).AssertStatus(HttpStatusCode.OK);
        var events = reply.Json["events"]!.AsArray().Select(e => e!.AsObject()).ToList();

        Assert.Equal(["insert", "update", "update", "delete"], events.Select(e => e["op"]!.GetValue<string>()));
        Assert.Equal("laptop", events[0]["clientId"]!.GetValue<string>());
        Assert.Null(events[0]["fields"]!["title"]!["before"]);
        Assert.Equal("draft", events[0]["fields"]!["title"]!["after"]!.GetValue<string>());
        Assert.Equal("draft", events[1]["fields"]!["title"]!["before"]!.GetValue<string>());
        Assert.Equal("final", events[1]["fields"]!["title"]!["after"]!.GetValue<string>());
        Assert.Empty(events[2]["fields"]!.AsObject());
        Assert.Equal("final", events[3]["fields"]!["title"]!["before"]!.GetValue<string>());
        Assert.Null(events[3]["fields"]!["title"]!["after"]);
        Assert.All(events, e => Assert.Matches("^[0-9a-f-]{36}$", e["eventId"]!.GetValue<string>()));
    }

    [Fact]
    public async Task As_of_a_time_the_record_is_what_the_server_held_then()
    {
        var (afterInsert, afterUpdates) = await SeedAsync();
        var alice = App.ClientFor("alice");

        JsonObject At(Reply reply) => reply.AssertStatus(HttpStatusCode.OK).Json["records"]![0]!.AsObject();
        var first = At(await alice.SendRawAsync(HttpMethod.Get, $"/audit/todo/tasks/t1?asOf={Uri.EscapeDataString(afterInsert.ToString("O"))}"));
        var second = At(await alice.SendRawAsync(HttpMethod.Get, $"/audit/todo/tasks/t1?asOf={Uri.EscapeDataString(afterUpdates.ToString("O"))}"));
        var now = At(await alice.SendRawAsync(HttpMethod.Get, $"/audit/todo/tasks/t1?asOf={Uri.EscapeDataString(DateTimeOffset.UtcNow.ToString("O"))}"));
        var before = await alice.SendRawAsync(HttpMethod.Get, "/audit/todo/tasks/t1?asOf=2000-01-01T00:00:00Z");

        Assert.Equal("draft", first["record"]!["data"]!["title"]!.GetValue<string>());
        Assert.Equal("final", second["record"]!["data"]!["title"]!.GetValue<string>());
        Assert.True(now["deleted"]!.GetValue<bool>());
        Assert.Null(now["record"]);
        before.AssertStatus(HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task Another_user_gets_404_and_a_bad_time_400()
    {
        await SeedAsync();
        var bob = App.ClientFor("bob");

        (await bob.SendRawAsync(HttpMethod.Get, "/audit/todo/tasks/t1/history")).AssertStatus(HttpStatusCode.NotFound);
        (await bob.SendRawAsync(HttpMethod.Get, $"/audit/todo/tasks/t1?asOf={Uri.EscapeDataString(DateTimeOffset.UtcNow.ToString("O"))}"))
            .AssertStatus(HttpStatusCode.NotFound);
        (await App.ClientFor("alice").SendRawAsync(HttpMethod.Get, "/audit/todo/tasks/t1?asOf=yesterday")).AssertStatus(HttpStatusCode.BadRequest);
    }

    [Fact]
    public async Task A_users_events_come_a_page_at_a_time_filtered_by_table_actor_and_time_and_export_as_json_lines()
    {
        var alice = App.ClientFor("alice", "laptop");
        var ai = Update("tasks", "t1", "title", "by ai", "2026-01-01T11:00:00.000Z");
        ai["actor"] = new { kind = "ai", missionId = "m-1" };
        (await alice.PushAsync("todo", Batch(Insert("tasks", "t1", new { title = "a" }), Insert("tasks", "t2", new { title = "b" }),
            Insert("notes", "n1", new { text = "c" }), ai))).AssertStatus(HttpStatusCode.OK);
        var afterFirst = DateTimeOffset.UtcNow;
        await Task.Delay(50);
        (await alice.PushAsync("todo", Batch(Insert("tasks", "t3", new { title = "d" })))).AssertStatus(HttpStatusCode.OK);

        var ids = new List<string>();
        string? cursor = null;
        var pages = 0;
        do
        {
            var page = (await alice.SendRawAsync(HttpMethod.Get, $"/audit/users/alice/events?limit=2{(cursor is null ? "" : "&cursor=" + cursor)}"))
                .AssertStatus(HttpStatusCode.OK);
            ids.AddRange(page.Json["events"]!.AsArray().Select(e => e!["id"]!.GetValue<string>()));
            cursor = page.Json["nextCursor"]?.GetValue<string>();
            pages++;
        } while (cursor is not null && pages < 10);
        var tasks = await alice.SendRawAsync(HttpMethod.Get, "/audit/users/alice/events?table=tasks&actor=user");
        var byAi = await alice.SendRawAsync(HttpMethod.Get, "/audit/users/alice/events?actor=ai");
        var later = await alice.SendRawAsync(HttpMethod.Get, $"/audit/users/alice/events?from={Uri.EscapeDataString(afterFirst.ToString("O"))}");
        var lines = await alice.SendRawAsync(HttpMethod.Get, "/audit/users/alice/events?format=jsonl&app=todo&table=notes");
        var badCursor = await alice.SendRawAsync(HttpMethod.Get, "/audit/users/alice/events?cursor=not-one");

        Assert.Equal(["t1", "t2", "n1", "t1", "t3"], ids);
        Assert.Equal(3, pages);
        Assert.Equal(["t1", "t2", "t3"], tasks.AssertStatus(HttpStatusCode.OK).Json["events"]!.AsArray().Select(e => e!["id"]!.GetValue<string>()));
        Assert.Equal("m-1", Assert.Single(byAi.Json["events"]!.AsArray())!["actor"]!["missionId"]!.GetValue<string>());
        Assert.Equal("t3", Assert.Single(later.Json["events"]!.AsArray())!["id"]!.GetValue<string>());
        Assert.Equal("n1", System.Text.Json.Nodes.JsonNode.Parse(Assert.Single(lines.Text.Split('\n', StringSplitOptions.RemoveEmptyEntries)))!["id"]!.GetValue<string>());
        badCursor.AssertStatus(HttpStatusCode.BadRequest);
    }

    [Fact]
    public async Task A_table_as_of_a_time_holds_its_records_as_they_were_then()
    {
        var (afterInsert, _) = await SeedAsync();
        (await App.ClientFor("alice").PushAsync("todo", Batch(Insert("tasks", "t2", new { title = "later" })))).AssertStatus(HttpStatusCode.OK);
        var alice = App.ClientFor("alice");

        var then = (await alice.SendRawAsync(HttpMethod.Get, $"/audit/users/alice/records?app=todo&table=tasks&asOf={Uri.EscapeDataString(afterInsert.ToString("O"))}"))
            .AssertStatus(HttpStatusCode.OK).Json["records"]!.AsArray();
        var now = (await alice.SendRawAsync(HttpMethod.Get, "/audit/users/alice/records?app=todo&table=tasks")).AssertStatus(HttpStatusCode.OK).Json["records"]!.AsArray();

        var record = Assert.Single(then)!;
        Assert.Equal(("t1", false, "draft"), (record["id"]!.GetValue<string>(), record["deleted"]!.GetValue<bool>(), record["fields"]!["title"]!["value"]!.GetValue<string>()));
        Assert.Equal(["t1:true", "t2:false"], now.Select(r => $"{r!["id"]}:{r["deleted"]}"));
    }

    [Fact]
    public async Task A_records_history_is_found_through_its_index_under_row_security_not_by_reading_the_whole_log()
    {
        await SeedAsync();
        await using var session = await App.Host.Services.GetRequiredService<CallerSessions>().SnapshotAsync(new Caller("alice", []), default);
        await using (await session.ExecuteAsync([new NpgsqlBatchCommand("set local enable_seqscan = off")], default)) { }
        var read = RecordEvents.ReadCommand("todo", "tasks", ["t1"], until: null);
        var explain = new NpgsqlBatchCommand("explain " + read.CommandText);
        foreach (NpgsqlParameter parameter in read.Parameters) explain.Parameters.Add(parameter.Clone());

        var plan = new List<string>();
        await using (var reader = await session.ExecuteAsync([explain], default))
            while (await reader.ReadAsync()) plan.Add(reader.GetString(0));

        // With sequential scans priced out, a scan of the log is still planned if row security forbids the index.
        Assert.DoesNotContain(plan, line => line.Contains("Seq Scan on mt_events"));
        Assert.Contains(plan, line => line.Contains("record_events_pkey"));
    }

    [Fact]
    public async Task Events_stored_before_the_record_index_existed_are_indexed_once_at_start()
    {
        await SeedAsync();
        await using var database = NpgsqlDataSource.Create(App.ConnectionString);
        await using (var forget = database.CreateCommand("truncate manasync.record_events; delete from manasync.setup_marks where mark = 'record_events'"))
            await forget.ExecuteNonQueryAsync();
        var alice = App.ClientFor("alice");

        var unindexed = await alice.SendRawAsync(HttpMethod.Get, "/audit/todo/tasks/t1/history");
        await RowSecurity.ApplyAsync(database, default);
        var indexed = await alice.SendRawAsync(HttpMethod.Get, "/audit/todo/tasks/t1/history");

        unindexed.AssertStatus(HttpStatusCode.NotFound);
        Assert.Equal(4, indexed.AssertStatus(HttpStatusCode.OK).Json["events"]!.AsArray().Count);
    }
}

