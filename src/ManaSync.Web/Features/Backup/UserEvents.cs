using System.Runtime.CompilerServices;
using ManaSync.Events;
using ManaSync.Web.Features.Sync;
using ManaSync.Web.Infrastructure;
using ManaSync.Web.Infrastructure.Isolation;
using Marten;
using Npgsql;

namespace ManaSync.Web.Features.Backup;

/// <summary>Which of a user's events to read: all when nothing is set.</summary>
/// <param name="ActorKind">The actor's kind ("ai", …); "user" for changes made without an actor.</param>
/// <param name="From">Received at or after this time.</param>
/// <param name="Until">Received at or before this time.</param>
public sealed record EventFilter(string? AppId = null, string? Table = null, string? ActorKind = null, DateTimeOffset? From = null,
    DateTimeOffset? Until = null)
{
    public static readonly EventFilter All = new();
}

/// <summary>
/// A user's own events (the changes they made), oldest first, read page by page: from every shard, since a user writes
/// into the shards of their spaces too. Each shard's events come in the order it stored them, and the shards' are
/// merged by receive time; an event stored in two shards (it moved a record between them) comes once.
/// </summary>
public static class UserEvents
{
    private const int PageSize = 1000;

    /// <param name="reader">Whose events (<see cref="Caller.UserId"/>), read as that caller (the user, or an auditor for them).</param>
    public static async IAsyncEnumerable<ChangeRecorded> ReadAsync(CallerSessions sessions, Caller reader, EventFilter filter,
        [EnumeratorCancellation] CancellationToken cancellation)
    {
        var shards = sessions.AllShards;
        if (shards.Count == 1)
        {
            await foreach (var change in ReadShardAsync(sessions, shards[0], reader, filter, cancellation)) yield return change;
            yield break;
        }

        var heads = new List<IAsyncEnumerator<ChangeRecorded>>();
        var moves = new HashSet<Guid>();
        try
        {
            foreach (var shard in shards)
            {
                var head = ReadShardAsync(sessions, shard, reader, filter, cancellation).GetAsyncEnumerator(cancellation);
                if (await head.MoveNextAsync()) heads.Add(head);
                else await head.DisposeAsync();
            }
            while (heads.Count > 0)
            {
                var next = heads.MinBy(head => Order(head.Current))!;
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

    /// <summary>The order events of several shards are merged in: receive time, then commit order.</summary>
    public static (DateTimeOffset, long, int) Order(ChangeRecorded change) => (change.ReceivedAt, change.CommitTx, change.CommitIndex);

    /// <summary>One snapshot (repeatable read) of the shard for the whole read, so counts and hashes agree with each other.</summary>
    private static async IAsyncEnumerable<ChangeRecorded> ReadShardAsync(CallerSessions sessions, string shard, Caller reader, EventFilter filter,
        [EnumeratorCancellation] CancellationToken cancellation)
    {
        await using var scope = await sessions.SnapshotAsync(reader, cancellation, shard);
        long after = 0;
        while (true)
        {
            var page = await ReadPageAsync(scope, reader.UserId, filter, after, PageSize, cancellation);
            foreach (var (position, change) in page)
            {
                after = position;
                yield return change;
            }
            if (page.Count < PageSize) yield break;
        }
    }

    /// <summary>A page of the user's events in one shard, in the order it stored them (<c>seq_id</c>), each with its position there.</summary>
    public static async Task<List<(long Position, ChangeRecorded Change)>> ReadPageAsync<TSession>(CallerSession<TSession> scope, string userId,
        EventFilter filter, long after, int limit, CancellationToken cancellation) where TSession : class, IQuerySession
    {
        var page = new NpgsqlBatchCommand(
            $"""
            select seq_id, data from {MartenSetup.Schema}.mt_events
            where {MartenSetup.Schema}.stream_owner(stream_id) = $1 and seq_id > $2
              and ($3::text is null or data ->> 'appId' = $3)
              and ($4::text is null or data ->> 'table' = $4)
              and ($5::text is null or coalesce(data -> 'actor' ->> 'kind', 'user') = $5)
              and ($6::timestamptz is null or (data ->> 'receivedAt')::timestamptz >= $6)
              and ($7::timestamptz is null or (data ->> 'receivedAt')::timestamptz <= $7)
            order by seq_id limit {limit}
            """)
        {
            Parameters =
            {
                new NpgsqlParameter { Value = userId },
                new NpgsqlParameter { Value = after },
                SessionBatch.Text(filter.AppId), SessionBatch.Text(filter.Table), SessionBatch.Text(filter.ActorKind),
                SessionBatch.Time(filter.From), SessionBatch.Time(filter.Until),
            },
        };
        var events = new List<(long, ChangeRecorded)>();
        await using var reader = await scope.ExecuteAsync([page], cancellation);
        while (await reader.ReadAsync(cancellation)) events.Add((reader.GetInt64(0), scope.Serializer.FromJson<ChangeRecorded>(reader, 1)));
        return events;
    }
}
