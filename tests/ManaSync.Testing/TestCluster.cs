using ManaSync.Web.Infrastructure;
using Npgsql;

namespace ManaSync.Testing;

/// <summary>
/// One throwaway PostgreSQL cluster for the whole test run, started on a free port; every test host
/// gets a database of its own in it.
/// </summary>
public static class TestCluster
{
    private static readonly Lazy<Task<EmbeddedPostgres>> Cluster = new(StartAsync);

    private static async Task<EmbeddedPostgres> StartAsync()
    {
        var cluster = await EmbeddedPostgres.StartThrowawayAsync();
        AppDomain.CurrentDomain.ProcessExit += (_, _) => cluster.StopAsync().GetAwaiter().GetResult();
        return cluster;
    }

    public static Task<EmbeddedPostgres> InstanceAsync() => Cluster.Value;

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
