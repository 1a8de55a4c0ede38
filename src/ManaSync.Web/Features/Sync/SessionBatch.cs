using Marten;
using Npgsql;
using NpgsqlTypes;

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

    /// <summary>A statement with several parameters, <c>$1</c>, <c>$2</c>…, in order (an array is one parameter only through
    /// <see cref="Command"/>); a parameter given as an <see cref="NpgsqlParameter"/> (a typed null) is taken as it is.</summary>
    public static NpgsqlBatchCommand CommandWith(string sql, params object[] parameters)
    {
        var command = new NpgsqlBatchCommand(sql);
        foreach (var parameter in parameters) command.Parameters.Add(parameter as NpgsqlParameter ?? new NpgsqlParameter { Value = parameter });
        return command;
    }

    /// <summary>A text parameter that may be SQL null.</summary>
    public static NpgsqlParameter Text(string? value) => new() { NpgsqlDbType = NpgsqlDbType.Text, Value = (object?)value ?? DBNull.Value };

    /// <summary>A timestamptz parameter that may be SQL null.</summary>
    public static NpgsqlParameter Time(DateTimeOffset? value) =>
        new() { NpgsqlDbType = NpgsqlDbType.TimestampTz, Value = value is { } time ? time.UtcDateTime : DBNull.Value };

    /// <summary>The documents of the reader's current result, one JSON column each, as Marten serialises them.</summary>
    public static async Task<List<T>> ReadDocumentsAsync<T>(NpgsqlDataReader reader, ISerializer serializer, CancellationToken cancellation)
    {
        var documents = new List<T>();
        while (await reader.ReadAsync(cancellation)) documents.Add(serializer.FromJson<T>(reader, 0));
        return documents;
    }
}
