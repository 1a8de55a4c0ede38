using System.Text.Json.Nodes;
using ManaSync.Testing;
using Npgsql;

namespace ManaSync.Tests.Migration;

/// <summary>One change as the Go service stored it in its <c>sync_changes</c> table.</summary>
public sealed record GoChangeRow(
    Guid Id,
    string AppId,
    string Table,
    string RecordId,
    string UserId,
    string Op,
    JsonObject? Data,
    JsonObject? FieldTimestamps,
    string ClientId,
    DateTimeOffset CreatedAt,
    JsonObject? Actor = null,
    int SchemaVersion = 1,
    string? SpaceId = null)
{
    /// <summary>The change as the Go service sent it to clients (its changeFromRow).</summary>
    public JsonObject ToWire()
    {
        var change = new JsonObject
        {
            ["eventId"] = Id.ToString(), ["schemaVersion"] = Math.Max(SchemaVersion, 1), ["table"] = Table, ["id"] = RecordId, ["op"] = Op,
        };
        if (SpaceId is not null) change["spaceId"] = SpaceId;
        if (Actor is not null) change["actor"] = Actor.DeepClone();
        switch (Op)
        {
            case "insert":
                change["data"] = Data?.DeepClone();
                break;
            case "update":
                change["fields"] = new JsonObject((FieldTimestamps ?? []).Where(stamp => Data?.ContainsKey(stamp.Key) == true)
                    .Select(stamp => KeyValuePair.Create(stamp.Key,
                        (JsonNode?)new JsonObject { ["value"] = Data![stamp.Key]?.DeepClone(), ["updatedAt"] = stamp.Value!.DeepClone() })));
                break;
            case "delete" when (Data?["deletedAt"]) is JsonValue deletedAt:
                change["deletedAt"] = deletedAt.DeepClone();
                break;
        }
        return change;
    }
}

/// <summary>
/// A database laid out as the Go service left it: its <c>sync_changes</c> table, either as its latest
/// version created it or as the first one did, before actor, schema_version and space_id were added.
/// </summary>
public static class GoServiceDatabase
{
    private const string FirstVersion = """
        create table sync_changes (
          id uuid primary key default gen_random_uuid(),
          app_id text not null, table_name text not null, record_id text not null, user_id text not null,
          op text not null check (op in ('insert', 'update', 'delete')),
          data jsonb, field_timestamps jsonb default '{}', client_id text not null,
          created_at timestamptz not null default now());
        create index idx_sync_changes_user_app on sync_changes (user_id, app_id, created_at);
        create index idx_sync_changes_table_record on sync_changes (table_name, record_id, created_at);
        create index idx_sync_changes_since on sync_changes (user_id, app_id, table_name, created_at);
        """;

    private const string LaterColumns = """
        alter table sync_changes add column if not exists schema_version int not null default 1;
        alter table sync_changes add column if not exists actor jsonb;
        alter table sync_changes add column if not exists space_id text;
        """;

    public static async Task<string> CreateAsync(bool latestVersion, IEnumerable<GoChangeRow> rows)
    {
        var connectionString = await TestCluster.CreateDatabaseAsync();
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using (var create = new NpgsqlCommand(FirstVersion + (latestVersion ? LaterColumns : ""), connection))
            await create.ExecuteNonQueryAsync();
        foreach (var row in rows)
        {
            await using var insert = new NpgsqlCommand(latestVersion
                ? "insert into sync_changes (id, app_id, table_name, record_id, user_id, op, data, field_timestamps, client_id, created_at, actor, schema_version, space_id) " +
                  "values ($1, $2, $3, $4, $5, $6, $7::jsonb, $8::jsonb, $9, $10, $11::jsonb, $12, $13)"
                : "insert into sync_changes (id, app_id, table_name, record_id, user_id, op, data, field_timestamps, client_id, created_at) " +
                  "values ($1, $2, $3, $4, $5, $6, $7::jsonb, $8::jsonb, $9, $10)", connection);
            foreach (var value in new object?[]
                     {
                         row.Id, row.AppId, row.Table, row.RecordId, row.UserId, row.Op, row.Data?.ToJsonString(), (row.FieldTimestamps ?? []).ToJsonString(),
                         row.ClientId, row.CreatedAt,
                     })
                insert.Parameters.Add(new NpgsqlParameter { Value = value ?? DBNull.Value });
            if (latestVersion)
            {
                insert.Parameters.Add(new NpgsqlParameter { Value = (object?)row.Actor?.ToJsonString() ?? DBNull.Value, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Text });
                insert.Parameters.Add(new NpgsqlParameter { Value = row.SchemaVersion });
                insert.Parameters.Add(new NpgsqlParameter { Value = (object?)row.SpaceId ?? DBNull.Value, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Text });
            }
            await insert.ExecuteNonQueryAsync();
        }
        return connectionString;
    }
}
