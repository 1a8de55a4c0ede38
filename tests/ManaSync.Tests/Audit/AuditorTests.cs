using System.Net;
using ManaSync.Testing;
using ManaSync.Tests.Support;
using ManaSync.Web.Infrastructure.Isolation;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using Xunit;
using static ManaSync.Testing.Changes;

namespace ManaSync.Tests.Audit;

/// <summary>
/// Auditors (PROTOCOL §12): a token whose scope holds "audit" reads other users' data, read-only, and every such read is
/// recorded; nobody else reads another user's data, and row security holds that even where a request path would not.
/// </summary>
public sealed class AuditorTests(AppFixture app) : SyncTest(app)
{
    private async Task SeedAsync()
    {
        (await App.ClientFor("alice", "laptop").PushAsync("todo", Batch(
            Insert("tasks", "t1", new { title = "draft", updatedAt = "2026-01-01T10:00:00.000Z" }),
            Insert("notes", "n1", new { text = "secret", updatedAt = "2026-01-01T10:00:00.000Z" })))).AssertStatus(HttpStatusCode.OK);
        (await App.ClientFor("alice", "phone").PushAsync("todo", Batch(
            Update("tasks", "t1", "title", "final", "2026-01-01T10:05:00.000Z")))).AssertStatus(HttpStatusCode.OK);
    }

    [Fact]
    public async Task An_auditor_reads_another_users_history_events_tables_and_records_and_each_read_is_in_the_access_log()
    {
        await SeedAsync();
        var auditor = App.AuditorFor("ada");

        var history = (await auditor.SendRawAsync(HttpMethod.Get, "/audit/todo/tasks/t1/history?user=alice")).AssertStatus(HttpStatusCode.OK);
        var events = (await auditor.SendRawAsync(HttpMethod.Get, "/audit/users/alice/events?table=tasks")).AssertStatus(HttpStatusCode.OK);
        var tables = (await auditor.SendRawAsync(HttpMethod.Get, "/audit/users/alice/tables")).AssertStatus(HttpStatusCode.OK);
        var records = (await auditor.SendRawAsync(HttpMethod.Get, "/audit/users/alice/records?app=todo&table=notes&q=SECR")).AssertStatus(HttpStatusCode.OK);
        var log = (await auditor.SendRawAsync(HttpMethod.Get, "/audit/access-log")).AssertStatus(HttpStatusCode.OK);

        Assert.Equal(["insert", "update"], history.Json["events"]!.AsArray().Select(e => e!["op"]!.GetValue<string>()));
        Assert.Equal(["insert", "update"], events.Json["events"]!.AsArray().Select(e => e!["op"]!.GetValue<string>()));
        Assert.Equal(["notes:1", "tasks:1"], tables.Json["tables"]!.AsArray().Select(t => $"{t!["table"]}:{t["records"]}"));
        Assert.Equal("secret", Assert.Single(records.Json["records"]!.AsArray())!["fields"]!["text"]!["value"]!.GetValue<string>());
        var entries = log.Json["entries"]!.AsArray();
        Assert.Equal(4, entries.Count);
        Assert.All(entries, entry => Assert.Equal(("ada", "alice"), (entry!["auditor"]!.GetValue<string>(), entry["user"]!.GetValue<string>())));
        Assert.Equal("/audit/users/alice/records?app=todo&table=notes&q=SECR", entries[0]!["path"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_user_naming_another_user_is_refused_and_reading_their_own_data_is_not_logged()
    {
        await SeedAsync();
        var bob = App.ClientFor("bob");

        var refusals = new[]
        {
            await bob.SendRawAsync(HttpMethod.Get, "/audit/todo/tasks/t1/history?user=alice"),
            await bob.SendRawAsync(HttpMethod.Get, $"/audit/todo/tasks/t1?user=alice&asOf={Uri.EscapeDataString(DateTimeOffset.UtcNow.ToString("O"))}"),
            await bob.SendRawAsync(HttpMethod.Get, "/audit/users/alice/events"),
            await bob.SendRawAsync(HttpMethod.Get, "/audit/users/alice/events?format=jsonl"),
            await bob.SendRawAsync(HttpMethod.Get, "/audit/users/alice/tables"),
            await bob.SendRawAsync(HttpMethod.Get, "/audit/users/alice/records?app=todo&table=tasks"),
            await bob.SendRawAsync(HttpMethod.Get, "/audit/access-log"),
        };
        var own = await App.ClientFor("alice").SendRawAsync(HttpMethod.Get, "/audit/users/alice/events");

        Assert.All(refusals, reply => Assert.Equal((HttpStatusCode.Forbidden, "forbidden"), (reply.Status, reply.Json["error"]!.GetValue<string>())));
        Assert.Equal(3, own.AssertStatus(HttpStatusCode.OK).Json["events"]!.AsArray().Count);
        Assert.Equal(0, await AccessLogCountAsync());
    }

    [Fact]
    public async Task An_auditor_token_cannot_push_or_import_and_stores_nothing()
    {
        var auditor = App.AuditorFor("ada");

        var push = await auditor.PushAsync("todo", Batch(Insert("tasks", "t9", new { title = "forged" })));
        var import = await App.ImportAsync("ada", [1, 2, 3], App.TokenFor("ada", "audit"));

        Assert.Equal((HttpStatusCode.Forbidden, "forbidden"), (push.Status, push.Json["error"]!.GetValue<string>()));
        Assert.Equal(HttpStatusCode.Forbidden, import.Status);
        Assert.Empty(await App.StoredEventsAsync());
    }

    [Fact]
    public async Task In_postgresql_an_auditors_read_sees_nothing_until_registered_and_never_writes()
    {
        await SeedAsync();
        var asAuditor = new Caller("alice", [], Auditor: "mallory");

        var unregistered = await CountAsAsync(asAuditor, "mt_doc_recordview");
        await using (var register = new NpgsqlConnection(App.ConnectionString))
        {
            await register.OpenAsync();
            await using var insert = new NpgsqlCommand("insert into manasync.auditors (user_id) values ('mallory')", register);
            await insert.ExecuteNonQueryAsync();
        }
        var registered = await CountAsAsync(asAuditor, "mt_doc_recordview");
        var events = await CountAsAsync(asAuditor, "mt_events");
        var write = await Assert.ThrowsAsync<PostgresException>(() => CountAsAsync(asAuditor, "mt_doc_recordview",
            "update manasync.mt_doc_recordview set data = data"));

        Assert.Equal(0, unregistered);
        Assert.Equal(2, registered);
        Assert.Equal(3, events);
        Assert.Equal(PostgresErrorCodes.InsufficientPrivilege, write.SqlState);
    }

    /// <summary>Runs a statement as requests do, for the caller, and counts the table's rows it then sees.</summary>
    private async Task<long> CountAsAsync(Caller caller, string table, string? before = null)
    {
        await using var session = await App.Host.Services.GetRequiredService<CallerSessions>().ReadAsync(caller, default);
        var commands = new List<NpgsqlBatchCommand>();
        if (before is not null) commands.Add(new NpgsqlBatchCommand(before));
        commands.Add(new NpgsqlBatchCommand($"select count(*) from manasync.{table}"));
        await using var reader = await session.ExecuteAsync(commands, default);
        if (before is not null) await reader.NextResultAsync();
        await reader.ReadAsync();
        return reader.GetInt64(0);
    }

    private async Task<long> AccessLogCountAsync()
    {
        await using var connection = new NpgsqlConnection(App.ConnectionString);
        await connection.OpenAsync();
        await using var count = new NpgsqlCommand("select count(*) from manasync.audit_access", connection);
        return (long)(await count.ExecuteScalarAsync())!;
    }
}
