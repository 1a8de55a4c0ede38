using System.Runtime.CompilerServices;
using System.Text.Json;
using ManaSync.Web.Infrastructure;
using Npgsql;

namespace ManaSync.Web.Features.Migration;

/// <summary>
/// The Go service's database, read-only: its <c>sync_changes</c> rows in the order the Go service
/// received them, page by page. Columns added in later versions (actor, schema_version, space_id) are
/// read when the table has them.
/// </summary>
public sealed class GoSource(NpgsqlDataSource database, IReadOnlySet<string> columns) : IAsyncDisposable
{
    private const int PageSize = 5000;

    public static async Task<GoSource> OpenAsync(string connectionString, CancellationToken cancellation)
    {
        var database = DataSources.Create(connectionString);
        await using var command = database.CreateCommand(
            "select column_name from information_schema.columns where table_name = 'sync_changes' and table_schema = any(current_schemas(false))");
        var columns = new HashSet<string>();
        await using (var reader = await command.ExecuteReaderAsync(cancellation))
            while (await reader.ReadAsync(cancellation)) columns.Add(reader.GetString(0));
        if (columns.Count == 0)
        {
            await database.DisposeAsync();
            throw new InvalidOperationException("The source database has no sync_changes table.");
        }
        return new GoSource(database, columns);
    }

    /// <summary>How many rows there are, and the source database's clock: rows received up to it are in the table.</summary>
    public async Task<(long Rows, DateTimeOffset Now)> SurveyAsync(CancellationToken cancellation)
    {
        await using var command = database.CreateCommand("select count(*), now() from sync_changes");
        await using var reader = await command.ExecuteReaderAsync(cancellation);
        await reader.ReadAsync(cancellation);
        return (reader.GetInt64(0), reader.GetFieldValue<DateTimeOffset>(1));
    }

    /// <summary>The spaces each user wrote into: the spaces whose records their changes may be about.</summary>
    public async Task<Dictionary<string, string[]>> SpacesOfUsersAsync(CancellationToken cancellation)
    {
        var spaces = new Dictionary<string, string[]>();
        if (!columns.Contains("space_id")) return spaces;
        await using var command = database.CreateCommand(
            "select user_id, array_agg(distinct space_id) from sync_changes where space_id <> '' group by user_id");
        await using var reader = await command.ExecuteReaderAsync(cancellation);
        while (await reader.ReadAsync(cancellation)) spaces[reader.GetString(0)] = reader.GetFieldValue<string[]>(1);
        return spaces;
    }

    /// <summary>Every row, oldest first (by receive time, then id).</summary>
    public async IAsyncEnumerable<GoRow> RowsAsync([EnumeratorCancellation] CancellationToken cancellation)
    {
        string Optional(string column, string otherwise) => columns.Contains(column) ? column : otherwise + " as " + column;
        var select = "select id, app_id, table_name, record_id, user_id, op, data, field_timestamps, client_id, created_at, " +
                     $"{Optional("actor", "null::jsonb")}, {Optional("schema_version", "1")}, {Optional("space_id", "null::text")} from sync_changes";
        (DateTimeOffset At, Guid Id)? after = null;
        while (true)
        {
            await using var command = database.CreateCommand(after is null
                ? $"{select} order by created_at, id limit {PageSize}"
                : $"{select} where (created_at, id) > ($1, $2) order by created_at, id limit {PageSize}");
            if (after is { } last)
            {
                command.Parameters.Add(new NpgsqlParameter { Value = last.At });
                command.Parameters.Add(new NpgsqlParameter { Value = last.Id });
            }
            var read = 0;
            await using var reader = await command.ExecuteReaderAsync(cancellation);
            while (await reader.ReadAsync(cancellation))
            {
                var row = new GoRow(
                    reader.GetGuid(0), reader.GetString(1), reader.GetString(2), reader.GetString(3), reader.GetString(4), reader.GetString(5),
                    Json(reader, 6), Json(reader, 7), reader.GetString(8), reader.GetFieldValue<DateTimeOffset>(9), Json(reader, 10),
                    reader.IsDBNull(11) ? 1 : reader.GetInt32(11), reader.IsDBNull(12) ? null : reader.GetString(12));
                after = (row.CreatedAt, row.Id);
                read++;
                yield return row;
            }
            if (read < PageSize) yield break;
        }
    }

    private static JsonElement? Json(NpgsqlDataReader reader, int column)
    {
        if (reader.IsDBNull(column)) return null;
        using var document = JsonDocument.Parse(reader.GetString(column));
        return document.RootElement.Clone();
    }

    public ValueTask DisposeAsync() => database.DisposeAsync();
}
