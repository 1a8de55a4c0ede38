using Npgsql;

namespace ManaSync.Testing;

/// <summary>Places scopes ("u:alice", "s:team") in the shard map of a sharded deployment's main database, before anyone asks where they are.</summary>
public static class ShardPlacement
{
    public static async Task PlaceAsync(string mainDatabase, params (string Scope, string Shard)[] placements)
    {
        await using var connection = new NpgsqlConnection(mainDatabase);
        await connection.OpenAsync();
        foreach (var (scope, shard) in placements)
        {
            await using var place = new NpgsqlCommand("insert into manasync.shard_map (scope, shard) values ($1, $2)", connection)
            {
                Parameters = { new() { Value = scope }, new() { Value = shard } },
            };
            await place.ExecuteNonQueryAsync();
        }
    }
}
