using ManaSync.Web.Infrastructure;
using Npgsql;

namespace ManaSync.Testing;

/// <summary>
/// Throwaway PostgreSQL clusters for the whole test run, each started on a free port when first needed; every
/// test host gets a database of its own in one. Cluster 0 serves most tests; sharding tests put their shards in
/// clusters 1 and 2 as well, so that each shard has a transaction horizon of its own, as separate servers do.
/// The clusters remove themselves once the test process is gone.
/// </summary>
public static class TestCluster
{
    private static readonly Lazy<Task<EmbeddedPostgres>>[] Clusters =
        Enumerable.Range(0, 3).Select(_ => new Lazy<Task<EmbeddedPostgres>>(() => EmbeddedPostgres.StartThrowawayAsync())).ToArray();

    /// <summary>Creates an empty database in the given cluster (0 to 2) and returns a connection string to it.</summary>
    public static async Task<string> CreateDatabaseAsync(int clusterIndex = 0)
    {
        var cluster = await Clusters[clusterIndex].Value;
        var name = "test_" + Guid.NewGuid().ToString("N")[..16];
        await using (var connection = new NpgsqlConnection(cluster.ConnectionString))
        {
            await connection.OpenAsync();
            await using var create = new NpgsqlCommand($"create database {name}", connection);
            await create.ExecuteNonQueryAsync();
        }
        return new NpgsqlConnectionStringBuilder(cluster.ConnectionString) { Database = name }.ConnectionString;
    }
}
