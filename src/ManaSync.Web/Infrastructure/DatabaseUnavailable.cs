using Npgsql;

namespace ManaSync.Web.Infrastructure;

/// <summary>
/// Whether a failure means no writable PostgreSQL answered — down, restarting, or failing over to a standby, or no
/// longer the shard of the scope written — so the request stored nothing it can know of and a retry will do: the
/// client gets a 503, not a 500.
/// </summary>
public static class DatabaseUnavailable
{
    public static bool Is(Exception? failure)
    {
        for (var e = failure; e is not null; e = e.InnerException)
        {
            switch (e)
            {
                case PostgresException postgres:
                    return IsUnavailable(postgres.SqlState);
                // A connection used by two commands at once: a bug in the server, not the database.
                case NpgsqlOperationInProgressException:
                    return false;
                // Npgsql's own errors (not the server's): a broken or refused connection, no primary among the
                // hosts ("No suitable host was found"), a pool that found no connection in time.
                case NpgsqlException:
                case TimeoutException:
                    return true;
            }
        }
        return false;
    }

    private static bool IsUnavailable(string sqlState) =>
        sqlState.StartsWith("08", StringComparison.Ordinal) // connection exceptions
        || sqlState is "57P01" or "57P02" or "57P03"        // admin shutdown, crash shutdown, cannot connect now (starting, promoting)
        || sqlState is "25006"                              // read-only transaction: a primary demoted under an open connection
        || sqlState is "53300"                              // too many connections
        || sqlState is Sharding.ScopeFences.MovedState;     // a scope that has moved to another shard: the next try goes there
}
