using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using ManaSync.Events;
using ManaSync.Events.Upcasting;
using ManaSync.Projections.Records;
using ManaSync.Testing;
using ManaSync.Tests.Support;
using ManaSync.Web.Features.Rebuild;
using ManaSync.Web.Features.WritePath;
using ManaSync.Web.Infrastructure;
using Marten;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using Xunit;
using static ManaSync.Testing.Changes;

namespace ManaSync.Tests.Rebuild;

/// <summary>
/// The rename of docs/schema-evolution.md, deployed after records were written: until a test deploys it the upcaster
/// leaves changes as they are, so the live view holds "title"; once deployed, new events read as "name" and a rebuild
/// brings the old records along.
/// </summary>
public sealed class LateRename : IChangeUpcaster
{
    private readonly RenameField _rename = new(1, "todo", "tasks", "title", "name");

    public bool Deployed { get; set; }

    public int From => 1;

    public ChangeRecorded Upcast(ChangeRecorded change) => Deployed ? _rename.Upcast(change) : change;
}

public sealed class RebuildFixture : AppFixture
{
    public LateRename Rename { get; } = new();

    protected override void ConfigureServices(IServiceCollection services) => services.AddSingleton<IChangeUpcaster>(Rename);

    public ViewRebuilder Rebuilder => Host.Services.GetRequiredService<ViewRebuilder>();
}

[CollectionDefinition(Name)]
public sealed class RebuildCollection : ICollectionFixture<RebuildFixture>
{
    public const string Name = "rebuild";
}

/// <summary>
/// Rebuilding the record view while the server serves (PROTOCOL §12): the new view is built beside the live one, the
/// switch loses nothing, and every record whose state changed reaches every device whole, once.
/// </summary>
[Collection(RebuildCollection.Name)]
public sealed class OnlineRebuildTests(RebuildFixture app) : IAsyncLifetime
{
    public async Task InitializeAsync()
    {
        app.Rename.Deployed = false;
        await app.ResetAsync();
        await using var connection = new NpgsqlConnection(app.ConnectionString);
        await connection.OpenAsync();
        await using var clear = new NpgsqlCommand("drop table if exists manasync.view_rebuild", connection);
        await clear.ExecuteNonQueryAsync();
    }

    public Task DisposeAsync()
    {
        app.Rename.Deployed = false;
        app.Rebuilder.ViewsPerFlush = ViewRebuilder.DefaultViewsPerFlush;
        return Task.CompletedTask;
    }

    [Fact]
    public async Task A_rebuild_under_pushes_and_pulls_switches_to_the_replayed_view_and_every_device_converges()
    {
        var alice = UniqueIds.New("alice");
        var bob = UniqueIds.New("bob");
        var devices = new[] { app.DeviceFor(alice, "laptop", "todo", ["tasks"]), app.DeviceFor(alice, "phone", "todo", ["tasks"]),
            app.DeviceFor(bob, "desk", "todo", ["tasks"]) };
        foreach (var (device, d) in devices.Select((device, d) => (device, d)))
        {
            for (var i = 0; i < 40; i++)
                device.Create("tasks", new JsonObject { ["id"] = $"d{d}-t{i}", ["title"] = $"task {i}", ["updatedAt"] = DeployedClient.Iso(DateTimeOffset.UtcNow) });
            await device.PushAllAsync();
        }
        foreach (var device in devices) await device.PullAsync();
        // Enough history for the build to take several pages while the devices go on.
        await PushHistoryAsync(UniqueIds.New("carol"), 12_000);

        app.Rename.Deployed = true;
        var start = await AdminAsync(HttpMethod.Post);
        Assert.Equal(HttpStatusCode.Accepted, start.Status);

        var regressions = new List<string>();
        var seen = devices.Select(_ => new Dictionary<string, string>()).ToArray();
        var edits = 0;
        RebuildStatus status;
        do
        {
            for (var d = 0; d < devices.Length; d++)
            {
                // The devices run the new version, which writes "name".
                devices[d].Update("tasks", $"d{d}-t{edits % 40}", ("name", $"edited {edits}"), ("updatedAt", DeployedClient.Iso(DateTimeOffset.UtcNow)));
                await devices[d].PushAllAsync();
                await devices[d].PullAsync();
                // No record lost or set back: each row is still there, with an updatedAt no older than before.
                foreach (var (id, updatedAt) in seen[d])
                    if (devices[d].Row("tasks", id)?["updatedAt"]?.GetValue<string>() is not { } now || string.CompareOrdinal(now, updatedAt) < 0)
                        regressions.Add($"{devices[d].ClientId}: {id} went from {updatedAt} to {devices[d].Row("tasks", id)?.ToJsonString() ?? "nothing"}");
                seen[d] = devices[d].Rows("tasks").Keys.ToDictionary(id => id, id => devices[d].Row("tasks", id)!["updatedAt"]!.GetValue<string>());
            }
            edits++;
            status = JsonSerializer.Deserialize<RebuildStatus>((await AdminAsync(HttpMethod.Get)).Text, Wire)!;
        } while (status.State is "running" or "catching-up" && edits < 2000);
        foreach (var device in devices) await device.PullAsync();

        Assert.Equal("switched", status.State);
        Assert.True(edits > 1, $"the devices worked through the rebuild ({edits} rounds)");
        Assert.Empty(regressions);
        await AssertViewIsTheReplayAsync();
        // Every record written before the rename changed (title became name): the devices' 120 and carol's 12,000.
        Assert.Equal(120 + 12_000, status.ChangedRecords);
        foreach (var (device, user) in devices.Zip([alice, alice, bob]))
        {
            var fresh = app.DeviceFor(user, "fresh-" + device.ClientId, "todo", ["tasks"]);
            await fresh.PullAsync();
            var (expected, actual) = (fresh.Rows("tasks"), device.Rows("tasks"));
            var differing = expected.Keys.Union(actual.Keys).FirstOrDefault(id => expected.GetValueOrDefault(id) != actual.GetValueOrDefault(id));
            Assert.True(differing is null,
                $"{device.ClientId}, {differing}: server {expected.GetValueOrDefault(differing ?? "")}, device {actual.GetValueOrDefault(differing ?? "")}");
            Assert.All(device.Rows("tasks").Values, row => Assert.DoesNotContain("\"title\"", row));
        }
    }

    [Fact]
    public async Task A_rebuild_killed_halfway_resumes_where_it_stopped_and_ends_with_the_same_view()
    {
        // Three pages of the build, writing what it merged (and where it got to) after each.
        await PushHistoryAsync(UniqueIds.New("carol"), 30_000);
        app.Rename.Deployed = true;
        app.Rebuilder.ViewsPerFlush = 10_000;

        using var kill = new CancellationTokenSource();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() =>
            app.Rebuilder.RunAsync(false, progress => { if (progress.EventsDone >= 20_000) kill.Cancel(); }, kill.Token));
        var stopped = await app.Rebuilder.StatusAsync(CancellationToken.None);
        var resumed = await app.Rebuilder.RunAsync(false, null, CancellationToken.None);

        Assert.Equal("failed", stopped.State);
        Assert.InRange(stopped.EventsDone, 1, 29_999);
        Assert.Equal("switched", resumed.State);
        Assert.Equal(30_000, resumed.EventsDone);
        Assert.Equal(30_000, resumed.ChangedRecords);
        await AssertViewIsTheReplayAsync();
    }

    [Fact]
    public async Task A_dry_run_reports_what_would_change_and_switches_nothing()
    {
        var dana = UniqueIds.New("dana");
        (await app.ClientFor(dana, "laptop").PushAsync("todo", Batch(Insert("tasks", "t1", new { title = "a" }), Insert("notes", "n1", new { title = "b" }))))
            .AssertStatus(HttpStatusCode.OK);
        app.Rename.Deployed = true;

        var end = await app.Rebuilder.RunAsync(true, null, CancellationToken.None);

        Assert.Equal("idle", end.State);
        Assert.Equal(1, end.ChangedRecords);
        var (pulled, _) = await app.ClientFor(dana, "phone").PullAllAsync("todo", "tasks");
        Assert.Equal("a", Assert.Single(pulled)["data"]!["title"]!.GetValue<string>());
    }

    [Fact]
    public async Task Only_the_service_key_starts_or_reads_a_rebuild_and_a_second_start_is_refused_while_one_runs()
    {
        await PushHistoryAsync(UniqueIds.New("erin"), 100);
        using var hold = new SemaphoreSlim(0);
        var running = Task.Run(() => app.Rebuilder.RunAsync(false, _ => hold.Wait(TimeSpan.FromSeconds(30)), CancellationToken.None));
        await WaitUntilAsync(async () => (await app.Rebuilder.StatusAsync(CancellationToken.None)).State != "idle");

        var withoutKey = await AdminAsync(HttpMethod.Post, key: null);
        var wrongKey = await AdminAsync(HttpMethod.Get, key: "not-the-key");
        var second = await AdminAsync(HttpMethod.Post);
        hold.Release(1000);
        var end = await running;

        Assert.Equal(HttpStatusCode.Unauthorized, withoutKey.Status);
        Assert.Equal("unauthorized", withoutKey.Json["error"]!.GetValue<string>());
        Assert.Equal(HttpStatusCode.Unauthorized, wrongKey.Status);
        Assert.Equal(HttpStatusCode.Conflict, second.Status);
        Assert.Equal("switched", end.State);
        Assert.Equal("switched", (await AdminAsync(HttpMethod.Get)).Json["state"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_writer_that_read_the_live_view_when_the_switch_began_stores_its_events_and_the_switch_follows()
    {
        await PushHistoryAsync(UniqueIds.New("frank"), 100);
        // A push's first steps, as the write path takes them: its locks, then the views it merges into.
        await using var writer = new NpgsqlConnection(app.ConnectionString);
        await writer.OpenAsync();
        await using var transaction = await writer.BeginTransactionAsync();
        await using (var steps = new NpgsqlBatch(writer, transaction)
                     {
                         BatchCommands =
                         {
                             WriteLocks.Command([WriteLocks.StreamLockKey(WriteLocks.Stream("todo", "frank"))]),
                             new NpgsqlBatchCommand($"select count(*) from {MartenSetup.Schema}.{RecordViewUpsert.Table}"),
                         },
                     })
            await steps.ExecuteNonQueryAsync();

        var rebuild = Task.Run(() => app.Rebuilder.RunAsync(false, null, CancellationToken.None));
        await WaitUntilAsync(async () => await RebuildWaitsForALockAsync() || rebuild.IsCompleted);
        // Its append (the log's lock an insert takes), while the switch waits: it has to go through, not deadlock.
        await using (var append = new NpgsqlCommand($"lock table {MartenSetup.Schema}.mt_events in row exclusive mode", writer, transaction))
            await append.ExecuteNonQueryAsync();
        await transaction.CommitAsync();
        var end = await rebuild;

        Assert.Equal("switched", end.State);
    }

    [Fact]
    public async Task A_push_whose_transaction_is_newer_than_any_ended_one_and_commits_after_a_page_read_past_it_is_in_the_switched_view()
    {
        var (erin, gina) = (UniqueIds.New("erin"), UniqueIds.New("gina"));
        // Two pages and a little: the scenario is staged while the first merges, before the third is read.
        await PushHistoryAsync(UniqueIds.New("carol"), 20_500);
        const long gate = 7881702187703290001;
        await using var admin = new NpgsqlConnection(app.ConnectionString);
        await admin.OpenAsync();
        // A writer stalled between taking its event's position (nextval, in Marten's append function) and storing the row,
        // as a busy machine can stall it: a trigger that fires before the row is stored waits for the test's lock.
        await ExecuteAsync(admin,
            $"""
            select pg_advisory_lock({gate});
            create function {MartenSetup.Schema}.test_stall() returns trigger language plpgsql as $$
            begin perform pg_advisory_lock_shared({gate}); perform pg_advisory_unlock_shared({gate}); return new; end $$;
            create trigger test_stall before insert on {MartenSetup.Schema}.mt_events
            for each row when (new.data ->> 'recordId' = 'late') execute function {MartenSetup.Schema}.test_stall();
            """);
        try
        {
            Task<Reply>? late = null;
            var staged = 0;
            var rebuild = Task.Run(() => app.Rebuilder.RunAsync(false, _ =>
            {
                if (Interlocked.Exchange(ref staged, 1) == 0) late = StageAsync().GetAwaiter().GetResult();
            }, CancellationToken.None));
            await WaitUntilAsync(async () => await RebuildWaitsForALockAsync() || rebuild.IsCompleted);
            await ExecuteAsync(admin, $"select pg_advisory_unlock({gate})");
            (await late!).AssertStatus(HttpStatusCode.OK);
            var end = await rebuild;

            Assert.Equal("switched", end.State);
            await AssertViewIsTheReplayAsync();
            var (pulled, _) = await app.ClientFor(erin, "tablet").PullAllAsync("todo", "tasks");
            Assert.Contains(pulled, change => change["id"]!.GetValue<string>() == "late");
        }
        finally
        {
            await ExecuteAsync(admin, $"select pg_advisory_unlock_all(); drop trigger if exists test_stall on {MartenSetup.Schema}.mt_events; " +
                                      $"drop function if exists {MartenSetup.Schema}.test_stall()");
        }

        // An older transaction (gina's push, held at its lock) takes its position after a newer one (erin's) took its own,
        // and commits first: the newer one, still running, is then newer than every transaction that has ended.
        async Task<Task<Reply>> StageAsync()
        {
            await using var holder = new NpgsqlConnection(app.ConnectionString);
            await holder.OpenAsync();
            await using var held = await holder.BeginTransactionAsync();
            await using (var hold = new NpgsqlBatch(holder, held) { BatchCommands = { WriteLocks.Command([WriteLocks.StreamLockKey(WriteLocks.Stream("todo", gina))]) } })
                await hold.ExecuteNonQueryAsync();
            var early = app.ClientFor(gina, "laptop").PushAsync("todo", Batch(Insert("tasks", "early", new { title = "early" })));
            await WaitUntilAsync(async () => await AdvisoryWaitsAsync(admin) == 1);
            var stalled = app.ClientFor(erin, "phone").PushAsync("todo", Batch(Insert("tasks", "late", new { title = "late" })));
            await WaitUntilAsync(async () => await AdvisoryWaitsAsync(admin, gate) == 1);
            await held.CommitAsync();
            (await early).AssertStatus(HttpStatusCode.OK);
            return stalled;
        }
    }

    [Fact]
    public async Task A_live_record_the_rebuilt_view_lacks_is_kept_as_it_was()
    {
        var hana = UniqueIds.New("hana");
        (await app.ClientFor(hana, "laptop").PushAsync("todo", Batch(Insert("tasks", "t1", new { title = "a" })))).AssertStatus(HttpStatusCode.OK);
        await using var admin = new NpgsqlConnection(app.ConnectionString);
        await admin.OpenAsync();
        // A live record no event gives: what the live view holds of a record whose events a build missed.
        const string live = $"{MartenSetup.Schema}.{RecordViewUpsert.Table}";
        await ExecuteAsync(admin,
            $"""
            create temp table ghost as select * from {live} where id like '%"t1"]';
            update ghost set id = replace(id, '"t1"]', '"ghost"]'), data = jsonb_set(data, '{"{id}"}', to_jsonb(replace(id, '"t1"]', '"ghost"]')));
            insert into {live} select * from ghost;
            """);

        var keptBefore = await KeptRecordsMetricAsync();

        var end = await app.Rebuilder.RunAsync(false, null, CancellationToken.None);

        Assert.Equal("switched", end.State);
        Assert.Equal(0, end.ChangedRecords);
        await using var count = new NpgsqlCommand($"select count(*) from {live} where id like '%\"ghost\"]' or id like '%\"t1\"]'", admin);
        Assert.Equal(2L, await count.ExecuteScalarAsync());
        // What an operator's alert sees; no other test keeps a record, so the count is exact.
        Assert.Equal(1, await KeptRecordsMetricAsync() - keptBefore);
    }

    private async Task<double> KeptRecordsMetricAsync() =>
        Scrape.Value(await app.Client.GetStringAsync("/metrics"), "mana_sync_rebuild_kept_records_total");

    private static async Task ExecuteAsync(NpgsqlConnection connection, string sql)
    {
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }

    /// <summary>Sessions waiting for an advisory lock (that one, when given).</summary>
    private static async Task<long> AdvisoryWaitsAsync(NpgsqlConnection connection, long? key = null)
    {
        await using var waiting = new NpgsqlCommand(
            "select count(*) from pg_locks where locktype = 'advisory' and not granted and ($1::bigint is null or objsubid = 1 and ((classid::bigint << 32) | objid::bigint) = $1)",
            connection) { Parameters = { new NpgsqlParameter { Value = (object?)key ?? DBNull.Value, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Bigint } } };
        return (long)(await waiting.ExecuteScalarAsync())!;
    }

    private async Task<bool> RebuildWaitsForALockAsync()
    {
        await using var connection = new NpgsqlConnection(app.ConnectionString);
        await connection.OpenAsync();
        await using var waiting = new NpgsqlCommand(
            $"select exists (select from pg_stat_activity where application_name = '{ViewBuild.ApplicationName}' and wait_event_type = 'Lock')", connection);
        return (bool)(await waiting.ExecuteScalarAsync())!;
    }

    /// <summary>The live view, record by record, is what replaying every event in log order through the merge gives.</summary>
    private async Task AssertViewIsTheReplayAsync()
    {
        var upcasting = app.Host.Services.GetRequiredService<ChangeUpcasting>();
        var expected = new Dictionary<string, RecordView>();
        foreach (var change in await app.StoredEventsAsync()) RecordViews.Apply(expected, upcasting.ToCurrent(change));
        await using var session = app.Store.QuerySession();
        var actual = (await session.Query<RecordView>().ToListAsync()).ToDictionary(view => view.Id);

        Assert.Equal(expected.Keys.Order(), actual.Keys.Order());
        foreach (var (id, view) in expected)
        {
            Assert.Equal(ViewBuild.Fingerprint(view), ViewBuild.Fingerprint(actual[id]));
            Assert.True(actual[id].Position >= view.Position, $"{id} kept a position at least its writes'");
        }
    }

    private async Task PushHistoryAsync(string user, int records)
    {
        var client = app.ClientFor(user, "importer");
        for (var start = 0; start < records; start += 1000)
            (await client.PushAsync("todo", Batch(Enumerable.Range(start, Math.Min(1000, records - start))
                .Select(i => (object)Insert("tasks", $"r{i}", new { title = $"record {i}", n = i })).ToArray()))).AssertStatus(HttpStatusCode.OK);
    }

    private static readonly JsonSerializerOptions Wire = new(JsonSerializerDefaults.Web);

    private async Task<Reply> AdminAsync(HttpMethod method, string? key = "dev-service-key")
    {
        using var request = new HttpRequestMessage(method, "/admin/projections/rebuild");
        if (key is not null) request.Headers.Add("X-Service-Key", key);
        using var response = await app.Client.SendAsync(request);
        return new Reply(response.StatusCode, await response.Content.ReadAsStringAsync());
    }

    private static async Task WaitUntilAsync(Func<Task<bool>> condition)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (!await condition() && DateTime.UtcNow < deadline) await Task.Delay(50);
    }
}
