using System.Runtime.CompilerServices;
using ManaSync.Events;
using ManaSync.Web.Infrastructure.Isolation;
using Marten;
using Npgsql;

namespace ManaSync.Web.Features.Backup;

/// <summary>A user's own events (the changes they made), oldest first, read page by page.</summary>
public static class UserEvents
{
    private const int PageSize = 1000;

    /// <summary>One snapshot (repeatable read) for the whole read, so counts and hashes agree with each other.</summary>
    public static async IAsyncEnumerable<ChangeRecorded> ReadAsync(CallerSessions sessions, string userId, string? appId,
        DateTimeOffset? until, [EnumeratorCancellation] CancellationToken cancellation)
    {
        await using var scope = await sessions.SnapshotAsync(new Caller(userId, []), cancellation);
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
