using Marten;
using Npgsql;

namespace ManaSync.Web.Features.Sync;

/// <summary>
/// Statements for <see cref="Infrastructure.Isolation.CallerSession{TSession}.ExecuteAsync"/>, which sends several in one
/// round trip (on a two-core machine shared with PostgreSQL each round trip costs more than the statements), and their results.
/// </summary>
public static class SessionBatch
{
    /// <summary>A statement with one parameter, <c>$1</c>.</summary>
    public static NpgsqlBatchCommand Command(string sql, object parameter) =>
        new(sql) { Parameters = { new NpgsqlParameter { Value = parameter } } };

    /// <summary>The documents of the reader's current result, one JSON column each, as Marten serialises them.</summary>
    public static async Task<List<T>> ReadDocumentsAsync<T>(NpgsqlDataReader reader, ISerializer serializer, CancellationToken cancellation)
    {
        var documents = new List<T>();
        while (await reader.ReadAsync(cancellation)) documents.Add(serializer.FromJson<T>(reader, 0));
        return documents;
    }
}
