using Marten;
using SessionOptions = Marten.Services.SessionOptions;
using Npgsql;

namespace ManaSync.Web.Infrastructure.Isolation;

/// <summary>
/// Marten sessions that act for a caller: each runs in its own transaction, as the restricted role,
/// with the caller's identity set (see <see cref="RowSecurity"/>). Every request path that touches
/// user data goes through here.
/// </summary>
public sealed class CallerSessions(IDocumentStore store, NpgsqlDataSource database)
{
    /// <summary>A session whose SaveChangesAsync commits the transaction.</summary>
    public async Task<CallerSession<IDocumentSession>> WriteAsync(Caller caller, CancellationToken cancellation)
    {
        var (connection, transaction) = await BeginAsync(caller, cancellation);
        return new(store.LightweightSession(SessionOptions.ForTransaction(transaction, shouldAutoCommit: true)), connection);
    }

    /// <summary>A read-only session; it takes no transaction id, so it holds back no cursor.</summary>
    public async Task<CallerSession<IQuerySession>> ReadAsync(Caller caller, CancellationToken cancellation)
    {
        var (connection, transaction) = await BeginAsync(caller, cancellation);
        return new(store.QuerySession(SessionOptions.ForTransaction(transaction)), connection);
    }

    private async Task<(NpgsqlConnection, NpgsqlTransaction)> BeginAsync(Caller caller, CancellationToken cancellation)
    {
        var connection = await database.OpenConnectionAsync(cancellation);
        try
        {
            var transaction = await connection.BeginTransactionAsync(cancellation);
            await RowSecurity.ActAsAsync(connection, transaction, caller, cancellation);
            return (connection, transaction);
        }
        catch
        {
            await connection.DisposeAsync();
            throw;
        }
    }
}

/// <summary>A session and the connection it owns; disposing ends both (an uncommitted transaction rolls back).</summary>
public sealed class CallerSession<TSession>(TSession session, NpgsqlConnection connection) : IAsyncDisposable
    where TSession : IQuerySession
{
    public TSession Session { get; } = session;

    public async ValueTask DisposeAsync()
    {
        await Session.DisposeAsync();
        await connection.DisposeAsync();
    }
}
