using System.Collections.Concurrent;
using System.Net;
using ManaSync.Projections.Records;
using ManaSync.Testing;
using ManaSync.Tests.Support;
using Npgsql;
using Xunit;
using static ManaSync.Testing.Changes;

namespace ManaSync.Tests.Sync;

/// <summary>The cursor never skips: a reader paging while others write sees every acknowledged change once.</summary>
public sealed class ConcurrentPagingTests(AppFixture app) : SyncTest(app)
{
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
        string? cursor = null;
        while (!writing.IsCompleted)
        {
            var page = (await reader.PullAsync("todo", "tasks", cursor, limit: 25)).AssertStatus(HttpStatusCode.OK);
            seen.AddRange(page.Changes.Select(change => change["id"]!.GetValue<string>()));
            cursor = page.Cursor;
        }
        await writing;
        var (rest, _) = await reader.PullAllAsync("todo", "tasks", cursor);
        seen.AddRange(rest.Select(change => change["id"]!.GetValue<string>()));

        Assert.Equal(writers * batchesPerWriter * batchSize, acknowledged.Count);
        Assert.Equal(acknowledged.Order(), seen.Order());
    }

    [Fact]
    public async Task A_transaction_that_commits_after_a_later_one_is_not_skipped()
    {
        // Hold the lock of record "late", so the push that writes it takes its transaction id and then waits.
        await using var blocker = new NpgsqlConnection(App.ConnectionString);
        await blocker.OpenAsync();
        await using var transaction = await blocker.BeginTransactionAsync();
        await using (var hold = new NpgsqlCommand("select pg_advisory_xact_lock(hashtextextended(@key, 0))", blocker, transaction))
        {
            hold.Parameters.AddWithValue("key", RecordKey.For(RecordKey.UserScope("alice"), "todo", "tasks", "late"));
            await hold.ExecuteNonQueryAsync();
        }

        var latePush = App.ClientFor("alice", "slow").PushAsync("todo", Batch(Insert("tasks", "late", new { n = 1 })));
        await WaitUntilWaitingOnLockAsync();
        (await App.ClientFor("alice", "fast").PushAsync("todo", Batch(Insert("tasks", "early", new { n = 2 }))))
            .AssertStatus(HttpStatusCode.OK);

        var reader = App.ClientFor("alice", "reader");
        var firstPage = (await reader.PullAsync("todo", "tasks")).AssertStatus(HttpStatusCode.OK);
        await transaction.RollbackAsync();
        (await latePush).AssertStatus(HttpStatusCode.OK);
        var (rest, _) = await reader.PullAllAsync("todo", "tasks", firstPage.Cursor);

        var all = firstPage.Changes.Concat(rest).Select(change => change["id"]!.GetValue<string>()).Order().ToList();
        Assert.Equal(["early", "late"], all);
    }

    private async Task WaitUntilWaitingOnLockAsync()
    {
        await using var connection = new NpgsqlConnection(App.ConnectionString);
        await connection.OpenAsync();
        for (var attempt = 0; attempt < 200; attempt++)
        {
            await using var query = new NpgsqlCommand(
                "select count(*) from pg_locks where locktype = 'advisory' and not granted", connection);
            if ((long)(await query.ExecuteScalarAsync())! > 0) return;
            await Task.Delay(50);
        }
        throw new TimeoutException("The push never waited on the record lock.");
    }
}
