using System.Collections.Concurrent;
using System.Net;
using ManaSync.Projections.Records;
using ManaSync.Testing;
using ManaSync.Tests.Support;
using ManaSync.Tests.Tenancy;
using ManaSync.Web.Features.Sync;
using ManaSync.Web.Features.WritePath;
using Npgsql;
using Xunit;
using static ManaSync.Testing.Changes;

namespace ManaSync.Tests.Sync;

/// <summary>The cursor never skips: a reader paging while others write sees every acknowledged change once.</summary>
[Collection(LongTransactionCollection.Name)]
public sealed class ConcurrentPagingTests(TenancyFixture app) : IAsyncLifetime
{
    private TenancyFixture App { get; } = app;

    public Task InitializeAsync() => App.ResetAsync();

    public Task DisposeAsync() => Task.CompletedTask;

    [Fact]
    public async Task A_paging_reader_sees_every_change_of_eight_parallel_writers_exactly_once()
    {
        const int writers = 8, batchesPerWriter = 15, batchSize = 10;
        var acknowledged = new ConcurrentBag<string>();
        var seen = new List<string>();
        var writing = Task.WhenAll(Enumerable.Range(0, writers).Select(writer => Task.Run(async () =>
        {
            var device = App.ClientFor("alice", $"writer-{writer}");
            for (var batch = 0; batch < batchesPerWriter; batch++)
            {
                var ids = Enumerable.Range(0, batchSize).Select(i => $"w{writer}-b{batch}-r{i}").ToList();
                var reply = await device.PushAsync("todo", Batch(ids.Select(id => (object)Insert("tasks", id, new { id })).ToArray()));
                reply.AssertStatus(HttpStatusCode.OK);
                foreach (var id in ids) acknowledged.Add(id);
            }
        })));

        var reader = App.ClientFor("alice", "reader");
        var cursor = await PageWhileAsync(reader, writing, 25, seen);
        await writing;
        var (rest, _) = await reader.PullAllAsync("todo", "tasks", cursor);
        seen.AddRange(rest.Select(change => change["id"]!.GetValue<string>()));

        Assert.Equal(writers * batchesPerWriter * batchSize, acknowledged.Count);
        Assert.Equal(acknowledged.Order(), seen.Order());
    }

    [Fact]
    public async Task A_transaction_that_commits_after_a_later_one_is_not_skipped()
    {
        // Hold the lock of a shared space, so the push that writes into it takes its transaction id and then waits.
        var (user, space) = await MemberOfASpaceLockedBeforeTheStreamAsync();
        await using var held = await HoldLockAsync(space);

        var latePush = App.ClientFor(user, "slow").PushAsync("todo", Batch(Insert("tasks", "late", new { n = 1, spaceId = space })));
        await WaitUntilWaitingOnLocksAsync(1);
        (await App.ClientFor(user, "fast").PushAsync("todo", Batch(Insert("tasks", "early", new { n = 2 }))))
            .AssertStatus(HttpStatusCode.OK);

        var reader = App.ClientFor(user, "reader");
        var firstPage = (await reader.PullAsync("todo", "tasks")).AssertStatus(HttpStatusCode.OK);
        await held.RollbackAsync();
        (await latePush).AssertStatus(HttpStatusCode.OK);
        var (rest, _) = await reader.PullAllAsync("todo", "tasks", firstPage.Cursor);

        var all = firstPage.Changes.Concat(rest).Select(change => change["id"]!.GetValue<string>()).Order().ToList();
        Assert.Equal(["early", "late"], all);
    }

    /// <summary>
    /// A read held back by an older transaction waits for it and reads its page again: what committed meanwhile is
    /// in that page, so the cursor it returns must lie after it too, or the next read sends it again.
    /// </summary>
    [Fact]
    public async Task A_read_that_waited_for_an_older_transaction_resumes_after_everything_it_sent()
    {
        var older = await HoldTransactionIdAsync();
        (await App.ClientFor("alice", "a").PushAsync("todo", Batch(Insert("tasks", "first", new { })))).AssertStatus(HttpStatusCode.OK);
        var reader = App.ClientFor("alice", "reader");
        var pulling = reader.PullAsync("todo", "tasks");
        await Task.Delay(300);
        // Its answer waits for the older transaction too, so only its commit is awaited here.
        var pushing = App.ClientFor("alice", "b").PushAsync("todo", Batch(Insert("tasks", "second", new { })));
        await StoredEventsReachAsync(2);
        await older.RollbackAsync();
        await older.DisposeAsync();
        var page = (await pulling).AssertStatus(HttpStatusCode.OK);
        (await pushing).AssertStatus(HttpStatusCode.OK);
        var (again, _) = await reader.PullAllAsync("todo", "tasks", page.Cursor);

        Assert.Equal(["first", "second"], page.Changes.Select(change => change["id"]!.GetValue<string>()).Order());
        Assert.Empty(again);
    }

    /// <summary>A rebuild writes its new view in transactions that say they are off the feed: reads do not wait for them.</summary>
    [Fact]
    public async Task A_read_does_not_wait_for_an_older_transaction_that_writes_nothing_the_feed_reads()
    {
        var offFeed = await HoldTransactionIdAsync(OffFeedWrites.MarkSql);
        (await App.ClientFor("alice", "a").PushAsync("todo", Batch(Insert("tasks", "first", new { })))).AssertStatus(HttpStatusCode.OK);
        var reader = App.ClientFor("alice", "reader");
        var page = (await reader.PullAsync("todo", "tasks")).AssertStatus(HttpStatusCode.OK);
        await offFeed.RollbackAsync();
        await offFeed.DisposeAsync();
        var (again, _) = await reader.PullAllAsync("todo", "tasks", page.Cursor);

        Assert.Equal(["first"], page.Changes.Select(change => change["id"]!.GetValue<string>()));
        Assert.Empty(again);
    }

    [Fact]
    public async Task A_read_still_waits_for_an_older_writer_beside_a_transaction_off_the_feed()
    {
        await using var offFeed = await HoldTransactionIdAsync(OffFeedWrites.MarkSql);
        var older = await HoldTransactionIdAsync();
        (await App.ClientFor("alice", "a").PushAsync("todo", Batch(Insert("tasks", "first", new { })))).AssertStatus(HttpStatusCode.OK);
        var reader = App.ClientFor("alice", "reader");
        var page = (await reader.PullAsync("todo", "tasks")).AssertStatus(HttpStatusCode.OK);
        await older.RollbackAsync();
        await older.DisposeAsync();
        var (rest, _) = await reader.PullAllAsync("todo", "tasks", page.Cursor);

        Assert.Empty(page.Changes);
        Assert.Equal(["first"], rest.Select(change => change["id"]!.GetValue<string>()));
    }

    [Fact]
    public async Task A_paging_reader_sees_each_of_5000_records_sharing_one_timestamp_once_though_ten_batches_commit_late()
    {
        const int batches = 100, batchSize = 50, late = 10;
        // Each late batch writes one record into a shared space whose lock is held here: the push takes
        // its position (its transaction id) and then waits, while the other ninety batches commit after it.
        var (user, space) = await MemberOfASpaceLockedBeforeTheStreamAsync();
        await using var held = await HoldLockAsync(space);
        var records = Enumerable.Range(0, batches)
            .Select(batch => Enumerable.Range(0, batchSize).Select(i => $"b{batch}-r{i}").ToList())
            .ToList();
        object BatchOf(List<string> ids, bool isLate = false) => Batch(ids.Select((id, i) => isLate && i == 0
            ? Insert("tasks", id, new { updatedAt = "2026-01-01T10:00:00.000Z", id, spaceId = space })
            : (object)Insert("tasks", id, new { updatedAt = "2026-01-01T10:00:00.000Z", id })).ToArray());

        var latePushes = records.Take(late).Select((ids, batch) => App.ClientFor(user, $"late-{batch}").PushAsync("todo", BatchOf(ids, isLate: true))).ToList();
        await WaitUntilWaitingOnLocksAsync(late);
        var writing = Task.WhenAll(Enumerable.Range(0, 10).Select(writer => Task.Run(async () =>
        {
            var device = App.ClientFor(user, $"writer-{writer}");
            for (var batch = late + writer; batch < batches; batch += 10)
                (await device.PushAsync("todo", BatchOf(records[batch]))).AssertStatus(HttpStatusCode.OK);
        })));
        var reader = App.ClientFor(user, "reader");
        var seen = new List<string>();
        var cursor = await PageWhileAsync(reader, writing, 200, seen);
        await writing;
        await held.RollbackAsync();
        foreach (var push in latePushes) (await push).AssertStatus(HttpStatusCode.OK);
        var (rest, _) = await reader.PullAllAsync("todo", "tasks", cursor);
        seen.AddRange(rest.Select(change => change["id"]!.GetValue<string>()));

        Assert.Equal(records.SelectMany(ids => ids).Order(), seen.Order());
    }

    /// <summary>Reads page after page while the writers run, collecting record ids; returns the cursor reached.</summary>
    private static async Task<string?> PageWhileAsync(SyncClient reader, Task writing, int limit, List<string> seen)
    {
        string? cursor = null;
        while (!writing.IsCompleted)
        {
            var page = (await reader.PullAsync("todo", "tasks", cursor, limit)).AssertStatus(HttpStatusCode.OK);
            seen.AddRange(page.Changes.Select(change => change["id"]!.GetValue<string>()));
            cursor = page.Cursor;
        }
        return cursor;
    }

    /// <summary>
    /// A fresh user (memberships are cached) and a space of theirs whose lock comes before their stream's in
    /// the order a push takes its locks: a push waiting for it does not yet hold the stream, so the
    /// user's later pushes can commit meanwhile. A user whose stream lock sorts below all fifty candidate
    /// spaces (about one in fifty) is passed over for another.
    /// </summary>
    private async Task<(string User, string Space)> MemberOfASpaceLockedBeforeTheStreamAsync()
    {
        var candidates = Enumerable.Range(0, 50).Select(n => $"late-space-{n}").ToList();
        await using var connection = new NpgsqlConnection(App.ConnectionString);
        await connection.OpenAsync();
        for (var attempt = 0; attempt < 20; attempt++)
        {
            var user = UniqueIds.New("alice");
            await using var query = new NpgsqlCommand(
                "select n from unnest(@keys) with ordinality as candidate(key, n) " +
                "where hashtextextended(key, 0) < hashtextextended(@stream, 0) order by n limit 1", connection);
            query.Parameters.AddWithValue("keys", candidates.Select(SpaceLock).ToArray());
            query.Parameters.AddWithValue("stream", WriteLocks.StreamLockKey(WriteLocks.Stream("todo", user)));
            if (await query.ExecuteScalarAsync() is not long n) continue;
            var space = candidates[(int)n - 1];
            App.Services.Spaces[user] = [space];
            return (user, space);
        }
        throw new InvalidOperationException("No user found whose stream lock sorts after one of the candidate spaces.");
    }

    private static string SpaceLock(string space) => WriteLocks.SpaceLockKey("todo", RecordKey.SpaceScope(space));

    /// <summary>Holds a space's write lock until the returned transaction ends.</summary>
    private async Task<HeldTransaction> HoldLockAsync(string space)
    {
        var connection = new NpgsqlConnection(App.ConnectionString);
        await connection.OpenAsync();
        var transaction = await connection.BeginTransactionAsync();
        await using var hold = new NpgsqlCommand("select pg_advisory_xact_lock(hashtextextended(@key, 0))", connection, transaction);
        hold.Parameters.AddWithValue("key", SpaceLock(space));
        await hold.ExecuteNonQueryAsync();
        return new HeldTransaction(connection, transaction);
    }

    /// <summary>A transaction that holds a transaction id (and so the commit horizon) until it ends.</summary>
    /// <param name="first">A statement it runs before it takes the id.</param>
    private async Task<HeldTransaction> HoldTransactionIdAsync(string first = "select")
    {
        var connection = new NpgsqlConnection(App.ConnectionString);
        await connection.OpenAsync();
        var transaction = await connection.BeginTransactionAsync();
        await using var take = new NpgsqlCommand($"{first}; select pg_current_xact_id()", connection, transaction);
        await take.ExecuteNonQueryAsync();
        return new HeldTransaction(connection, transaction);
    }

    private async Task StoredEventsReachAsync(int count)
    {
        await using var connection = new NpgsqlConnection(App.ConnectionString);
        await connection.OpenAsync();
        for (var attempt = 0; attempt < 200; attempt++)
        {
            await using var query = new NpgsqlCommand("select count(*) from manasync.mt_events where type <> 'tombstone'", connection);
            if ((long)(await query.ExecuteScalarAsync())! >= count) return;
            await Task.Delay(10);
        }
        throw new TimeoutException($"Fewer than {count} events were stored.");
    }

    private sealed class HeldTransaction(NpgsqlConnection connection, NpgsqlTransaction transaction) : IAsyncDisposable
    {
        public Task RollbackAsync() => transaction.RollbackAsync();

        public async ValueTask DisposeAsync()
        {
            await transaction.DisposeAsync();
            await connection.DisposeAsync();
        }
    }

    private async Task WaitUntilWaitingOnLocksAsync(int count)
    {
        await using var connection = new NpgsqlConnection(App.ConnectionString);
        await connection.OpenAsync();
        for (var attempt = 0; attempt < 200; attempt++)
        {
            await using var query = new NpgsqlCommand(
                "select count(*) from pg_locks where locktype = 'advisory' and not granted", connection);
            if ((long)(await query.ExecuteScalarAsync())! >= count) return;
            await Task.Delay(50);
        }
        throw new TimeoutException("The pushes never waited on the held lock.");
    }
}
