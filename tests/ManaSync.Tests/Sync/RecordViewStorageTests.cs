using System.Net;
using ManaSync.Projections.Records;
using ManaSync.Testing;
using ManaSync.Tests.Support;
using Npgsql;
using Xunit;
using static ManaSync.Testing.Changes;

namespace ManaSync.Tests.Sync;

/// <summary>The projection writes views with SQL of its own (<see cref="RecordViewUpsert"/>): every column, each in its place.</summary>
public sealed class RecordViewStorageTests(AppFixture app) : SyncTest(app)
{
    [Fact]
    public async Task The_view_write_fills_every_column_of_the_view_table()
    {
        var columns = await QueryAsync<string>(
            "select column_name from information_schema.columns where table_schema = 'manasync' and table_name = 'mt_doc_recordview'");

        Assert.Equal(columns.Order(), RecordViewUpsert.Columns.Order());
    }

    [Fact]
    public async Task Each_view_row_repeats_its_documents_members_in_the_feed_columns()
    {
        var laptop = App.ClientFor("alice", "laptop");
        (await laptop.PushAsync("todo", Batch(Insert("tasks", "t1", new { title = "a" }), Insert("tasks", "t2", new { title = "b" }))))
            .AssertStatus(HttpStatusCode.OK);
        (await laptop.PushAsync("notes", Batch(Insert("notes", "n1", new { text = "c" })))).AssertStatus(HttpStatusCode.OK);
        (await App.ClientFor("alice", "phone").PushAsync("todo", Batch(Update("tasks", "t2", "title", "d", "2030-01-01T00:00:00.000Z"))))
            .AssertStatus(HttpStatusCode.OK);

        var rows = await QueryAsync<string>(
            "select concat_ws(' ', data->>'recordId', scope, app_id, table_name, position_tx = (data->>'positionTx')::bigint, " +
            "position_index = (data->>'positionIndex')::integer, coalesce(sole_client, '-'), mt_dotnet_type) " +
            "from manasync.mt_doc_recordview order by data->>'recordId'");

        const string type = "ManaSync.Projections.Records.RecordView";
        Assert.Equal([$"n1 u:alice notes notes t t laptop {type}", $"t1 u:alice todo tasks t t laptop {type}",
            $"t2 u:alice todo tasks t t - {type}"], rows);
    }

    private async Task<List<T>> QueryAsync<T>(string sql)
    {
        await using var connection = new NpgsqlConnection(App.ConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        await using var reader = await command.ExecuteReaderAsync();
        var rows = new List<T>();
        while (await reader.ReadAsync()) rows.Add(reader.GetFieldValue<T>(0));
        return rows;
    }
}
