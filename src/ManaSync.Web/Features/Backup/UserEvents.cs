using System.Data;
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
        await using var scope = await sessions.ReadAsync(new Caller(userId, []), cancellation, IsolationLevel.RepeatableRead);
        var connection = (NpgsqlConnection)scope.Session.Connection!;
        var serializer = scope.Session.DocumentStore.Options.Serializer();
        long after = 0;
        while (true)
        {
            await using var page = new NpgsqlCommand(
                $"""
                select seq_id, data from {Infrastructure.MartenSetup.Schema}.mt_events
                where {Infrastructure.MartenSetup.Schema}.stream_owner(stream_id) = @user and seq_id > @after
                  and (@app::text is null or data ->> 'appId' = @app)
                  and (@until::timestamptz is null or (data ->> 'receivedAt')::timestamptz <= @until)
                order by seq_id limit {PageSize}
                """, connection);
            page.Parameters.AddWithValue("user", userId);
            page.Parameters.AddWithValue("after", after);
            page.Parameters.Add(new NpgsqlParameter("app", NpgsqlTypes.NpgsqlDbType.Text) { Value = (object?)appId ?? DBNull.Value });
            page.Parameters.Add(new NpgsqlParameter("until", NpgsqlTypes.NpgsqlDbType.TimestampTz)
                { Value = until is { } t ? t.UtcDateTime : DBNull.Value });
            var read = 0;
            await using var reader = await page.ExecuteReaderAsync(cancellation);
            while (await reader.ReadAsync(cancellation))
            {
                after = reader.GetInt64(0);
                read++;
                yield return serializer.FromJson<ChangeRecorded>(reader, 1);
            }
            if (read < PageSize) yield break;
        }
    }
}
