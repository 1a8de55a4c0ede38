using System.Net;
using ManaSync.Testing;
using ManaSync.Web.Features.WritePath;
using Npgsql;
using Xunit;

namespace ManaSync.Tests.Reliability;

/// <summary>
/// Checks what a <see cref="PushLoad"/> sent against the event log itself, read as the database owner
/// (past row security), so that a view row cannot stand in for a missing or doubled event.
/// </summary>
public static class PushLedger
{
    /// <summary>
    /// Every stored change's event id, with how many events carry it. Marten's own tombstones are left
    /// out: when a push fails after it reserved event sequence numbers (the database died mid-commit),
    /// Marten fills the gap with events of type "tombstone" in its "mt_tombstone" stream, which belong
    /// to no user and record no change.
    /// </summary>
    /// <param name="users">Only these users' "todo" streams, when the database is shared with other tests.</param>
    public static async Task<Dictionary<Guid, long>> StoredEventIdsAsync(string connectionString, IEnumerable<string>? users = null)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var query = new NpgsqlCommand(
            "select id, count(*) from manasync.mt_events where type <> 'tombstone' and ($1::text[] is null or stream_id = any($1)) group by id",
            connection);
        query.Parameters.Add(new NpgsqlParameter { Value = users?.Select(user => WriteLocks.Stream("todo", user)).ToArray() ?? (object)DBNull.Value,
            NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Array | NpgsqlTypes.NpgsqlDbType.Text });
        await using var reader = await query.ExecuteReaderAsync();
        var stored = new Dictionary<Guid, long>();
        while (await reader.ReadAsync()) stored[reader.GetGuid(0)] = reader.GetInt64(1);
        return stored;
    }

    /// <summary>Every acknowledged batch is wholly stored; every batch in doubt is wholly stored or not at all.</summary>
    public static void AssertNoBatchLostOrHalfStored(PushLoad load, IReadOnlyDictionary<Guid, long> stored)
    {
        foreach (var batch in load.Acknowledged)
            Assert.True(batch.EventIds.All(stored.ContainsKey), $"Acknowledged batch {batch.RecordIds[0]}… is not wholly stored.");
        foreach (var batch in load.InDoubt)
        {
            var present = batch.EventIds.Count(stored.ContainsKey);
            Assert.True(present == 0 || present == batch.EventIds.Count,
                $"Batch {batch.RecordIds[0]}… is half stored: {present} of {batch.EventIds.Count} events.");
        }
    }

    /// <summary>Pushes every batch left in doubt again, with its original eventIds, as a client's retry does.</summary>
    public static async Task RetryInDoubtAsync(PushLoad load, Func<string, string, Task<SyncClient>> deviceFor)
    {
        foreach (var batch in load.InDoubt)
        {
            var device = await deviceFor(batch.UserId, batch.ClientId);
            (await device.PushRawAsync("todo", batch.Body)).AssertStatus(HttpStatusCode.OK);
        }
    }

    /// <summary>The log holds exactly one event per change sent, and nothing else.</summary>
    public static void AssertEachChangeStoredOnce(PushLoad load, IReadOnlyDictionary<Guid, long> stored)
    {
        var sent = load.Acknowledged.Concat(load.InDoubt).SelectMany(batch => batch.EventIds).ToHashSet();
        var missing = sent.Where(id => !stored.ContainsKey(id)).ToList();
        var unexpected = stored.Keys.Where(id => !sent.Contains(id)).ToList();
        Assert.True(missing.Count == 0 && unexpected.Count == 0,
            $"{missing.Count} changes sent are not stored (first {missing.FirstOrDefault()}); {unexpected.Count} stored were never sent.");
        Assert.All(stored, entry => Assert.Equal(1, entry.Value));
    }
}
