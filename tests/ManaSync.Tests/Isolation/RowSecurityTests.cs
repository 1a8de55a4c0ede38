using System.Net;
using ManaSync.Events;
using ManaSync.Projections.Records;
using ManaSync.Testing;
using ManaSync.Tests.Support;
using ManaSync.Web.Infrastructure.Isolation;
using Marten;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using Xunit;
using static ManaSync.Testing.Changes;

namespace ManaSync.Tests.Isolation;

/// <summary>PostgreSQL itself keeps users apart: queries without any user filter still see only the caller's rows.</summary>
public sealed class RowSecurityTests(AppFixture app) : SyncTest(app)
{
    private async Task SeedAsync()
    {
        (await App.ClientFor("alice").PushAsync("todo", Batch(Insert("tasks", "a1", new { }), Insert("tasks", "a2", new { }))))
            .AssertStatus(HttpStatusCode.OK);
        (await App.ClientFor("bob").PushAsync("todo", Batch(Insert("tasks", "b1", new { })))).AssertStatus(HttpStatusCode.OK);
    }

    private CallerSessions Sessions => App.Host.Services.GetRequiredService<CallerSessions>();

    [Fact]
    public async Task An_unfiltered_marten_query_returns_only_the_callers_rows()
    {
        await SeedAsync();

        await using var alice = await Sessions.SnapshotAsync(new Caller("alice", []), default);
        await using (await alice.ExecuteAsync([], default)) { }
        var views = await alice.Session.Query<RecordView>().ToListAsync();
        var events = await alice.Session.Events.QueryAllRawEvents().ToListAsync();

        Assert.Equal(["a1", "a2"], views.Select(v => v.RecordId).Order());
        Assert.Equal(2, events.Count);
        Assert.All(events, e => Assert.Equal("alice", ((ChangeRecorded)e.Data).UserId));
    }

    [Theory]
    [InlineData("alice", 2, 2, 1)]
    [InlineData("bob", 1, 1, 1)]
    [InlineData("", 0, 0, 0)]
    [InlineData(null, 0, 0, 0)]
    public async Task Plain_sql_as_the_restricted_role_sees_only_the_identity_set(string? user, long views, long events, long streams)
    {
        await SeedAsync();
        var (connection, transaction) = await OpenAsRequestsDoAsync(user is null ? null : new Caller(user, []));
        await using var _ = connection;

        async Task<long> CountAsync(string table)
        {
            await using var count = new NpgsqlCommand($"select count(*) from manasync.{table}", connection, transaction);
            return (long)(await count.ExecuteScalarAsync())!;
        }

        Assert.Equal(views, await CountAsync("mt_doc_recordview"));
        Assert.Equal(events, await CountAsync("mt_events"));
        Assert.Equal(streams, await CountAsync("mt_streams"));
    }

    [Fact]
    public async Task A_connection_opened_for_requests_stays_the_restricted_role_when_the_pool_resets_it()
    {
        await using var connection = new NpgsqlConnection(RowSecurity.ConnectingAsAppRole(App.ConnectionString));
        await connection.OpenAsync();
        foreach (var reset in new[] { "discard all", "reset role" })
        {
            await using var command = new NpgsqlCommand(reset, connection);
            await command.ExecuteNonQueryAsync();
        }
        await using var who = new NpgsqlCommand("select current_user", connection);

        Assert.Equal(RowSecurity.AppRole, await who.ExecuteScalarAsync());
    }

    [Fact]
    public async Task A_request_runs_as_the_restricted_role_with_plans_made_once_and_never_jit_compiled()
    {
        await using var alice = await Sessions.ReadAsync(new Caller("alice", []), default);
        await using var settings = await alice.ExecuteAsync(
            [new NpgsqlBatchCommand("select current_user::text, current_setting('plan_cache_mode'), current_setting('jit')")], default);

        Assert.True(await settings.ReadAsync());
        Assert.Equal([RowSecurity.AppRole, "force_generic_plan", "off"], [settings.GetString(0), settings.GetString(1), settings.GetString(2)]);
    }

    [Fact]
    public async Task A_read_without_a_transaction_acts_for_the_caller_in_every_round_trip()
    {
        await SeedAsync();
        await using var alice = await Sessions.ReadAsync(new Caller("alice", []), default);

        foreach (var _ in new[] { 1, 2 })
        {
            await using var count = await alice.ExecuteAsync([new NpgsqlBatchCommand("select count(*) from manasync.mt_doc_recordview")], default);
            Assert.True(await count.ReadAsync());
            Assert.Equal(2, count.GetInt64(0));
        }
    }

    [Fact]
    public async Task A_caller_session_offers_its_marten_session_only_after_the_identity_is_sent()
    {
        await using var alice = await Sessions.SnapshotAsync(new Caller("alice", []), default);

        Assert.Throws<InvalidOperationException>(() => alice.Session);
        await using (await alice.ExecuteAsync([], default)) { }
        Assert.NotNull(alice.Session);
    }

    [Theory]
    [InlineData("mt_doc_envelope")]
    [InlineData("wolverine_incoming_envelopes")]
    [InlineData("wolverine_dead_letters")]
    [InlineData("mt_doc_deadletterevent")]
    public async Task The_restricted_role_cannot_read_bookkeeping_tables(string table)
    {
        var (connection, transaction) = await OpenAsRequestsDoAsync(new Caller("alice", []));
        await using var _ = connection;
        await using var read = new NpgsqlCommand($"select count(*) from manasync.{table}", connection, transaction);

        var refused = await Assert.ThrowsAsync<PostgresException>(() => read.ExecuteScalarAsync());
        Assert.Equal(PostgresErrorCodes.InsufficientPrivilege, refused.SqlState);
    }

    [Fact]
    public async Task The_restricted_role_can_neither_bypass_nor_write_for_someone_else()
    {
        await using var connection = new NpgsqlConnection(App.ConnectionString);
        await connection.OpenAsync();
        await using (var role = new NpgsqlCommand("select rolsuper, rolbypassrls from pg_roles where rolname = @name", connection))
        {
            role.Parameters.AddWithValue("name", RowSecurity.AppRole);
            await using var reader = await role.ExecuteReaderAsync();
            Assert.True(await reader.ReadAsync());
            Assert.False(reader.GetBoolean(0));
            Assert.False(reader.GetBoolean(1));
        }

        var (requests, transaction) = await OpenAsRequestsDoAsync(new Caller("mallory", []));
        await using var _ = requests;
        await using var forge = new NpgsqlCommand(
            "insert into manasync.mt_doc_recordview (id, data, scope, app_id, table_name, position_tx, position_index) " +
            "values ('x', '{}', 'u:alice', 'todo', 'tasks', 0, 0)", requests, transaction);
        var refused = await Assert.ThrowsAsync<PostgresException>(() => forge.ExecuteNonQueryAsync());
        Assert.Equal(PostgresErrorCodes.InsufficientPrivilege, refused.SqlState);
    }

    [Fact]
    public async Task Ids_with_quotes_commas_braces_and_backslashes_reach_the_policies_exactly()
    {
        var caller = new Caller("we\"ird, {user}\\ ", ["org, \"1\"}", "{}"]);
        var (connection, transaction) = await OpenAsRequestsDoAsync(caller);
        await using var _ = connection;
        await using var read = new NpgsqlCommand("select manasync.caller_scopes()", connection, transaction);

        Assert.Equal(caller.Scopes, (string[])(await read.ExecuteScalarAsync())!);
    }

    /// <summary>A connection as requests open one, in a transaction, with the caller's identity sent unless null.</summary>
    private async Task<(NpgsqlConnection, NpgsqlTransaction)> OpenAsRequestsDoAsync(Caller? caller)
    {
        var connection = new NpgsqlConnection(RowSecurity.ConnectingAsAppRole(App.ConnectionString));
        await connection.OpenAsync();
        var transaction = await connection.BeginTransactionAsync();
        if (caller is not null)
        {
            await using var identity = new NpgsqlBatch(connection, transaction) { BatchCommands = { RowSecurity.IdentityCommand(caller, positionSql: null) } };
            await identity.ExecuteNonQueryAsync();
        }
        return (connection, transaction);
    }
}
