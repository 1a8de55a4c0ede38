using Npgsql;
using Marten;

namespace ManaSync.Projections.Records;

/// <summary>
/// Writes record views set-based: one <c>insert … select from unnest(…) on conflict</c> for all the views a
/// transaction changed, where Marten writes one statement per document. It fills the columns Marten reads and the
/// feed's duplicated columns (<c>MartenSetup</c>), as Marten's own upsert would; row security checks each row.
/// </summary>
/// <param name="table">The views' table: Marten's, or a rebuild's new one being built beside it.</param>
public sealed class RecordViewUpsert(string schema, string table = RecordViewUpsert.Table)
{
    public const string Table = "mt_doc_recordview";

    private static readonly string DocumentType = typeof(RecordView).FullName!;

    /// <summary>Every column it writes: all of the table's, or a column Marten adds would be left empty.</summary>
    public static readonly IReadOnlyList<string> Columns =
        ["id", "data", "mt_dotnet_type", "mt_version", "mt_last_modified", "scope", "app_id", "table_name", "position_tx", "position_index", "sole_client"];

    private readonly string _queued = Sql(schema, table, _ => "?");
    private readonly string _command = Sql(schema, table, n => "$" + n);

    /// <summary>The statement, with its nine parameters written by <paramref name="parameter"/> (Marten's "?", Npgsql's "$n").</summary>
    private static string Sql(string schema, string table, Func<int, string> parameter) => $"""
        insert into {schema}.{table} as v ({string.Join(", ", Columns)})
        select r.id, r.data::jsonb, {parameter(1)}, 1, transaction_timestamp(), r.scope, r.app_id, r.table_name, r.position_tx, r.position_index, r.sole_client
        from unnest({parameter(2)}::varchar[], {parameter(3)}::text[], {parameter(4)}::varchar[], {parameter(5)}::varchar[], {parameter(6)}::varchar[],
                    {parameter(7)}::bigint[], {parameter(8)}::integer[], {parameter(9)}::varchar[])
            as r(id, data, scope, app_id, table_name, position_tx, position_index, sole_client)
        on conflict (id) do update set data = excluded.data, mt_version = v.mt_version + 1,
            mt_last_modified = excluded.mt_last_modified, position_tx = excluded.position_tx,
            position_index = excluded.position_index, sole_client = excluded.sole_client
        """;

    /// <summary>Queues the write of these views (each once) to run with the session's other operations.</summary>
    public void Queue(IDocumentOperations operations, IReadOnlyCollection<RecordView> views)
    {
        if (views.Count == 0) return;
        operations.QueueSqlCommand(_queued, Parameters(views, operations.DocumentStore.Options.Serializer()));
    }

    /// <summary>The write of these views (each once) as a statement of its own.</summary>
    public NpgsqlBatchCommand Command(IReadOnlyCollection<RecordView> views, ISerializer serializer)
    {
        var command = new NpgsqlBatchCommand(_command);
        foreach (var value in Parameters(views, serializer)) command.Parameters.Add(new NpgsqlParameter { Value = value ?? DBNull.Value });
        return command;
    }

    private static object[] Parameters(IReadOnlyCollection<RecordView> views, ISerializer serializer)
    {
        var ids = new string[views.Count];
        var data = new string[views.Count];
        var scopes = new string[views.Count];
        var apps = new string[views.Count];
        var tables = new string[views.Count];
        var positionTxs = new long[views.Count];
        var positionIndexes = new int[views.Count];
        var soleClients = new string?[views.Count];
        var i = 0;
        foreach (var view in views)
        {
            (ids[i], data[i], scopes[i], apps[i], tables[i]) = (view.Id, serializer.ToJson(view), view.Scope, view.AppId, view.TableName);
            (positionTxs[i], positionIndexes[i], soleClients[i]) = (view.PositionTx, view.PositionIndex, view.SoleClient);
            i++;
        }
        return [DocumentType, ids, data, scopes, apps, tables, positionTxs, positionIndexes, soleClients];
    }
}
