using Npgsql;

namespace ManaSync.Web.Infrastructure;

/// <summary>
/// Runs an idempotent schema script in one transaction, under an advisory lock of its own: nodes starting at once
/// take turns rather than racing on the same <c>create or replace</c>.
/// </summary>
public static class SchemaScript
{
    public static async Task ApplyAsync(NpgsqlDataSource database, string lockName, string script, CancellationToken cancellation)
    {
        await using var connection = await database.OpenConnectionAsync(cancellation);
        await using var transaction = await connection.BeginTransactionAsync(cancellation);
        await using (var command = new NpgsqlCommand($"select pg_advisory_xact_lock(hashtextextended('{lockName}', 0));" + script, connection, transaction))
            await command.ExecuteNonQueryAsync(cancellation);
        await transaction.CommitAsync(cancellation);
    }
}
