using System.Net;
using System.Text.Json.Nodes;
using ManaSync.Testing;
using ManaSync.Tests.Reliability;
using Npgsql;
using Xunit;
using Xunit.Abstractions;
using static ManaSync.Testing.Changes;

namespace ManaSync.Tests.Failover;

/// <summary>One pg_auto_failover formation and one server process, given both data nodes, for the failover tests.</summary>
public sealed class FormationFixture : IAsyncLifetime
{
    public Formation Formation { get; private set; } = null!;
    public ServerProcess Server { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Formation = await Formation.StartAsync();
        Server = await ServerProcess.StartAsync(Formation.DatabaseUrl);
    }

    public async Task DisposeAsync()
    {
        await Server.DisposeAsync();
        await Formation.DisposeAsync();
    }
}

/// <summary>
/// The primary PostgreSQL is lost (killed with SIGKILL, or handed over in a switchover) while devices push and
/// read: nothing acknowledged is lost, nothing is half stored, retries store each change once, cursors stay
/// valid, and the same server process carries on with the new primary. Every test leaves the formation with a
/// primary and a synchronous standby.
/// </summary>
public sealed class FailoverTests(FormationFixture fixture, ITestOutputHelper output) : IClassFixture<FormationFixture>
{
    private readonly Formation _formation = fixture.Formation;
    private readonly ServerProcess _server = fixture.Server;
    private static readonly TimeSpan Promotion = TimeSpan.FromSeconds(90);

    [Fact]
    public async Task Killing_the_primary_under_load_loses_no_acknowledged_batch_and_readers_see_every_record_once()
    {
        var users = new[] { UniqueIds.New("ann"), UniqueIds.New("ben"), UniqueIds.New("cai"), UniqueIds.New("dee") };
        var devices = await DevicesAsync(users);
        var reader = new PagingReader(await _server.ClientForAsync(users[0], "reader"));
        await using var stream = await SseStream.OpenAsync(_server.Client, "/sync/todo/stream?collections=tasks",
            (await _server.ClientForAsync(users[1], "streamer")).Token);
        var load = PushLoad.Start(devices, batchSize: 10);
        var reading = reader.RunAsync();
        await load.AcknowledgedAtLeastAsync(30, within: TimeSpan.FromSeconds(60));

        var killed = await _formation.KillPrimaryAsync();
        var outageTimer = System.Diagnostics.Stopwatch.StartNew();
        HealthDuringOutage outage;
        string primary;
        try
        {
            outage = await HealthBecomesDegradedAsync();
            var acknowledgedBefore = load.Acknowledged.Count;
            primary = await _formation.WaitForNewPrimaryAsync(killed, Promotion);
            var promoted = outageTimer.Elapsed;
            // The same server process, never restarted, finds the new primary and takes pushes again.
            await load.AcknowledgedAtLeastAsync(acknowledgedBefore + 1, within: TimeSpan.FromSeconds(60));
            output.WriteLine($"primary killed → standby promoted {promoted.TotalSeconds:F1} s → first push acknowledged {outageTimer.Elapsed.TotalSeconds:F1} s");
            await load.AcknowledgedAtLeastAsync(acknowledgedBefore + 30, within: TimeSpan.FromSeconds(60));
        }
        finally
        {
            await load.StopAsync();
            await _formation.RejoinAsync(killed);
        }
        output.WriteLine($"longest push answer: {load.LongestWait.TotalSeconds:F1} s; {load.Refusals.Count} answered 503");
        var stored = await PushLedger.StoredEventIdsAsync(_formation.ConnectionStringTo(primary), users);
        await PushLedger.RetryInDoubtAsync(load, (user, clientId) => _server.ClientForAsync(user, clientId));
        var afterRetries = await PushLedger.StoredEventIdsAsync(_formation.ConnectionStringTo(primary), users);
        var seenByReader = await reader.StopAndCatchUpAsync(reading);
        var freshDevice = await _server.ClientForAsync(users[0], "fresh");
        var (pulled, _) = await freshDevice.PullAllAsync("todo", "tasks");
        var sentBySecondUser = RecordsSentBy(load, users[1]);
        var streamed = await DeliveredAsync(stream, sentBySecondUser.Count);

        Assert.Equal("degraded", outage.Status);
        Assert.Equal("unreachable", outage.Database);
        Assert.NotEmpty(load.InDoubt);
        Assert.All(load.Refusals, status => Assert.Equal(HttpStatusCode.ServiceUnavailable, status));
        PushLedger.AssertNoBatchLostOrHalfStored(load, stored);
        PushLedger.AssertEachChangeStoredOnce(load, afterRetries);
        var sentByFirstUser = RecordsSentBy(load, users[0]);
        Assert.Equal(sentByFirstUser, pulled.Select(change => change["id"]!.GetValue<string>()).Order());
        Assert.Equal(sentByFirstUser, seenByReader.Keys.Order());
        Assert.All(seenByReader, record => Assert.True(record.Value == 1, $"{record.Key} reached the reader {record.Value} times"));
        // The stream stayed open through the failover and went on from where it was.
        Assert.False(stream.Ended);
        Assert.Equal(sentBySecondUser, streamed.Keys.Order());
        Assert.All(streamed, record => Assert.True(record.Value == 1, $"{record.Key} was streamed {record.Value} times"));
    }

    [Fact]
    public async Task A_switchover_under_load_loses_nothing_and_needs_no_restart()
    {
        var users = new[] { UniqueIds.New("eve"), UniqueIds.New("fay") };
        var devices = await DevicesAsync(users);
        var load = PushLoad.Start(devices, batchSize: 10);
        await load.AcknowledgedAtLeastAsync(30, within: TimeSpan.FromSeconds(60));

        string primary;
        try
        {
            primary = await _formation.SwitchoverAsync();
            var acknowledgedBefore = load.Acknowledged.Count;
            await load.AcknowledgedAtLeastAsync(acknowledgedBefore + 30, within: TimeSpan.FromSeconds(60));
        }
        finally
        {
            await load.StopAsync();
        }
        output.WriteLine($"longest push answer: {load.LongestWait.TotalSeconds:F1} s; {load.Refusals.Count} answered 503");
        var stored = await PushLedger.StoredEventIdsAsync(_formation.ConnectionStringTo(primary), users);
        await PushLedger.RetryInDoubtAsync(load, (user, clientId) => _server.ClientForAsync(user, clientId));
        var afterRetries = await PushLedger.StoredEventIdsAsync(_formation.ConnectionStringTo(primary), users);

        Assert.All(load.Refusals, status => Assert.Equal(HttpStatusCode.ServiceUnavailable, status));
        PushLedger.AssertNoBatchLostOrHalfStored(load, stored);
        PushLedger.AssertEachChangeStoredOnce(load, afterRetries);
    }

    /// <summary>
    /// The new primary hands out transaction ids again from just past the last one its WAL holds, so ids of
    /// transactions that rolled back on the old primary, whose abort never reached the standby, come round again.
    /// A cursor the old primary handed out must still lie at or below every one of them. (Left to chance, the
    /// rollbacks usually reach the standby before a kill does; here replication is held while they run.)
    /// </summary>
    [Fact]
    public async Task A_cursor_issued_before_the_primary_died_misses_nothing_written_after_it()
    {
        var user = UniqueIds.New("gil");
        var writer = await _server.ClientForAsync(user, "writer");
        var reader = await _server.ClientForAsync(user, "reader");
        (await writer.PushAsync("todo", Batch(Insert("tasks", "before", new { })))).AssertStatus(HttpStatusCode.OK);
        var oldPrimary = await _formation.PrimaryAsync();
        long idsUsedUp;
        List<JsonObject> before;
        string cursor;
        string killed;
        // The rollbacks' WAL never reaches the standby: the primary dies first.
        await using (await _formation.PauseReplicationAsync())
        {
            idsUsedUp = await RollBackTransactionsAsync(_formation.ConnectionStringTo(oldPrimary), count: 20);
            (before, cursor) = await reader.PullAllAsync("todo", "tasks");
            killed = await _formation.KillAsync(oldPrimary);
        }
        long firstIdOnNewPrimary;
        try
        {
            var primary = await _formation.WaitForNewPrimaryAsync(killed, Promotion);
            firstIdOnNewPrimary = await NextTransactionIdAsync(_formation.ConnectionStringTo(primary));
            Reply? pushed = null;
            for (var attempt = 0; attempt < 40 && pushed?.Status != HttpStatusCode.OK; attempt++)
            {
                if (attempt > 0) await Task.Delay(500);
                pushed = await writer.PushAsync("todo", Batch(Insert("tasks", "after", new { })));
            }
            pushed!.AssertStatus(HttpStatusCode.OK);
        }
        finally
        {
            await _formation.RejoinAsync(killed);
        }
        var (after, _) = await reader.PullAllAsync("todo", "tasks", cursor);

        Assert.Equal(["before"], before.Select(change => change["id"]!.GetValue<string>()));
        // The hazard is real: ids the old primary had used up are handed out again.
        Assert.True(firstIdOnNewPrimary <= idsUsedUp, $"new primary starts at {firstIdOnNewPrimary}, the old one had used up to {idsUsedUp}");
        Assert.Equal(["after"], after.Select(change => change["id"]!.GetValue<string>()));
    }

    private async Task<List<PushLoad.Device>> DevicesAsync(IEnumerable<string> users)
    {
        var devices = new List<PushLoad.Device>();
        foreach (var user in users)
            for (var device = 0; device < 2; device++)
                devices.Add(new PushLoad.Device(user, $"device-{device}", await _server.ClientForAsync(user, $"device-{device}")));
        return devices;
    }

    private static List<string> RecordsSentBy(PushLoad load, string user) =>
        load.Acknowledged.Concat(load.InDoubt).Where(batch => batch.UserId == user).SelectMany(batch => batch.RecordIds).Order().ToList();

    /// <summary>Each record the stream delivers, with how often, until <paramref name="count"/> changes came.</summary>
    private static async Task<Dictionary<string, int>> DeliveredAsync(SseStream stream, int count)
    {
        var delivered = new Dictionary<string, int>();
        for (var received = 0; received < count;)
        {
            foreach (var change in (await stream.NextAsync("changes", withinSeconds: 60)).Json["changes"]!.AsArray())
            {
                var id = change!["id"]!.GetValue<string>();
                delivered[id] = delivered.GetValueOrDefault(id) + 1;
                received++;
            }
        }
        return delivered;
    }

    private sealed record HealthDuringOutage(string Status, string Database);

    private async Task<HealthDuringOutage> HealthBecomesDegradedAsync()
    {
        for (var attempt = 0; attempt < 200; attempt++)
        {
            using var response = await _server.Client.GetAsync("/health");
            if (response.StatusCode == HttpStatusCode.ServiceUnavailable)
            {
                var body = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
                Assert.True(response.Headers.RetryAfter is not null, "a 503 without Retry-After");
                return new HealthDuringOutage(body["status"]!.GetValue<string>(), body["database"]!.GetValue<string>());
            }
            await Task.Delay(100);
        }
        throw new TimeoutException("/health never answered 503 while the primary was down.");
    }

    /// <summary>Transactions that take an id and roll back, as refused pushes do; returns the last id taken.</summary>
    private static async Task<long> RollBackTransactionsAsync(string connectionString, int count)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        long last = 0;
        for (var i = 0; i < count; i++)
        {
            await using var transaction = await connection.BeginTransactionAsync();
            await using var take = new NpgsqlCommand("select pg_current_xact_id()::text::bigint", connection, transaction);
            last = (long)(await take.ExecuteScalarAsync())!;
            await transaction.RollbackAsync();
        }
        return last;
    }

    private static async Task<long> NextTransactionIdAsync(string connectionString)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var query = new NpgsqlCommand("select pg_snapshot_xmax(pg_current_snapshot())::text::bigint", connection);
        return (long)(await query.ExecuteScalarAsync())!;
    }

    /// <summary>A device paging through one table with its cursor, a page of 7 at a time, counting each record it receives.</summary>
    private sealed class PagingReader(SyncClient client)
    {
        private readonly Dictionary<string, int> _seen = [];
        private readonly CancellationTokenSource _stop = new();
        private string? _cursor;

        public Task RunAsync() => Task.Run(async () =>
        {
            while (!_stop.IsCancellationRequested)
            {
                if (!await ReadPageAsync()) await Task.Delay(50);
            }
        });

        public async Task<IReadOnlyDictionary<string, int>> StopAndCatchUpAsync(Task running)
        {
            await _stop.CancelAsync();
            await running;
            for (var attempt = 0; attempt < 1000; attempt++)
                if (!await ReadPageAsync()) break;
            return _seen;
        }

        /// <returns>Whether there is more to read at once.</returns>
        private async Task<bool> ReadPageAsync()
        {
            Reply reply;
            try
            {
                reply = await client.PullAsync("todo", "tasks", _cursor, limit: 7);
            }
            catch (HttpRequestException)
            {
                return false;
            }
            if (reply.Status != HttpStatusCode.OK) return false;
            foreach (var change in reply.Changes)
            {
                var id = change["id"]!.GetValue<string>();
                _seen[id] = _seen.GetValueOrDefault(id) + 1;
            }
            _cursor = reply.Cursor;
            return reply.HasMore;
        }
    }
}
