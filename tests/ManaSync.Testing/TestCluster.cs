using ManaSync.Web.Infrastructure;
using Npgsql;

namespace ManaSync.Testing;

/// <summary>
/// One throwaway PostgreSQL cluster for the whole test run, started on a free port; every test host
/// gets a database of its own in it. The cluster removes itself once the test process is gone.
/// </summary>
public static class TestCluster
{
    private static readonly Lazy<Task<EmbeddedPostgres>> Cluster = new(() => EmbeddedPostgres.StartThrowawayAsync());

    /// <summary>Creates an empty database and returns a connection string to it.</summary>
    public static async Task<string> CreateDatabaseAsync()
    {
        var cluster = await Cluster.Value;
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
