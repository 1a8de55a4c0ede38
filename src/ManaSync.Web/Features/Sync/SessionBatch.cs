using Marten;
using Npgsql;

namespace ManaSync.Web.Features.Sync;

/// <summary>
/// Several statements sent on a session's connection, inside its transaction, in one round trip:
/// on a two-core machine shared with PostgreSQL each round trip costs more than the statements.
/// </summary>
public static class SessionBatch
{
    public static NpgsqlBatch For(IQuerySession session, params NpgsqlBatchCommand[] commands)
    {
        var batch = new NpgsqlBatch((NpgsqlConnection)session.Connection!);
        foreach (var command in commands) batch.BatchCommands.Add(command);
        return batch;
    }

    /// <summary>A statement with one parameter, <c>$1</c>.</summary>
    public static NpgsqlBatchCommand Command(string sql, object parameter) =>
        new(sql) { Parameters = { new NpgsqlParameter { Value = parameter } } };

    /// <summary>The documents of the reader's current result, one JSON column each, as Marten serialises them.</summary>
    public static async Task<List<T>> ReadDocumentsAsync<T>(NpgsqlDataReader reader, IQuerySession session, CancellationToken cancellation)
    {
        var serializer = session.DocumentStore.Options.Serializer();
        var documents = new List<T>();
        while (await reader.ReadAsync(cancellation)) documents.Add(serializer.FromJson<T>(reader, 0));
        return documents;
    }
}
