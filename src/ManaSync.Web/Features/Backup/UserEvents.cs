using System.Runtime.CompilerServices;
using ManaSync.Events;
using ManaSync.Web.Infrastructure.Isolation;
using Marten;
using Npgsql;

namespace ManaSync.Web.Features.Backup;

/// <summary>
/// A user's own events (the changes they made), oldest first, read page by page: from every shard, since a user writes
/// into the shards of their spaces too. Each shard's events come in the order it stored them, and the shards' are
/// merged by receive time; an event stored in two shards (it moved a record between them) comes once.
/// </summary>
public static class UserEvents
{
    private const int PageSize = 1000;

    public static async IAsyncEnumerable<ChangeRecorded> ReadAsync(CallerSessions sessions, string userId, string? appId,
        DateTimeOffset? until, [EnumeratorCancellation] CancellationToken cancellation)
    {
        var shards = sessions.AllShards;
        if (shards.Count == 1)
        {
            await foreach (var change in ReadShardAsync(sessions, shards[0], userId, appId, until, cancellation)) yield return change;
            yield break;
        }

        var heads = new List<IAsyncEnumerator<ChangeRecorded>>();
        var moves = new HashSet<Guid>();
        try
        {
            foreach (var shard in shards)
            {
                var head = ReadShardAsync(sessions, shard, userId, appId, until, cancellation).GetAsyncEnumerator(cancellation);
                if (await head.MoveNextAsync()) heads.Add(head);
                else await head.DisposeAsync();
            }
            while (heads.Count > 0)
            {
                var next = heads.MinBy(head => (head.Current.ReceivedAt, head.Current.CommitTx, head.Current.CommitIndex))!;
                var change = next.Current;
                // Only an event that moved a record can be in two shards: remembering those alone keeps memory flat.
                if (change.MovedFrom is null || moves.Add(change.EventId)) yield return change;
                if (await next.MoveNextAsync()) continue;
                heads.Remove(next);
                await next.DisposeAsync();
            }
        }
        finally
        {
            foreach (var head in heads) await head.DisposeAsync();
        }
    }

    /// <summary>One snapshot (repeatable read) of the shard for the whole read, so counts and hashes agree with each other.</summary>
    private static async IAsyncEnumerable<ChangeRecorded> ReadShardAsync(CallerSessions sessions, string shard, string userId, string? appId,
        DateTimeOffset? until, [EnumeratorCancellation] CancellationToken cancellation)
    {
        await using var scope = await sessions.SnapshotAsync(new Caller(userId, []), cancellation, shard);
        long after = 0;
        while (true)
        {
            var page = new NpgsqlBatchCommand(
                $"""
                select seq_id, data from {Infrastructure.MartenSetup.Schema}.mt_events
                where {Infrastructure.MartenSetup.Schema}.stream_owner(stream_id) = $1 and seq_id > $2
                  and ($3::text is null or data ->> 'appId' = $3)
                  and ($4::timestamptz is null or (data ->> 'receivedAt')::timestamptz <= $4)
                order by seq_id limit {PageSize}
                """)
            {
                Parameters =
                {
                    new NpgsqlParameter { Value = userId },
                    new NpgsqlParameter { Value = after },
                    new NpgsqlParameter { NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Text, Value = (object?)appId ?? DBNull.Value },
                    new NpgsqlParameter { NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.TimestampTz, Value = until is { } t ? t.UtcDateTime : DBNull.Value },
                },
            };
            var read = 0;
            await using var reader = await scope.ExecuteAsync([page], cancellation);
            while (await reader.ReadAsync(cancellation))
            {
                after = reader.GetInt64(0);
                read++;
                yield return scope.Serializer.FromJson<ChangeRecorded>(reader, 1);
            }
            if (read < PageSize) yield break;
        }
    }
}
