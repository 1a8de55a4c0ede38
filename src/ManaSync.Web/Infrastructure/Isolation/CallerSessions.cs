using System.Data;
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
    /// <summary>A session whose SaveChangesAsync commits the transaction, unless <paramref name="commitOnSave"/> is false.</summary>
    public async Task<CallerSession<IDocumentSession>> WriteAsync(Caller caller, CancellationToken cancellation,
        bool commitOnSave = true)
    {
        var (connection, transaction) = await BeginAsync(caller, cancellation);
        return new(store.LightweightSession(SessionOptions.ForTransaction(transaction, shouldAutoCommit: commitOnSave)),
            connection, transaction);
    }

    /// <summary>A read-only session; it takes no transaction id, so it holds back no cursor.</summary>
    public async Task<CallerSession<IQuerySession>> ReadAsync(Caller caller, CancellationToken cancellation,
        IsolationLevel isolation = IsolationLevel.ReadCommitted)
    {
        var (connection, transaction) = await BeginAsync(caller, cancellation, isolation);
        return new(store.QuerySession(SessionOptions.ForTransaction(transaction)), connection, transaction);
    }

    private async Task<(NpgsqlConnection, NpgsqlTransaction)> BeginAsync(Caller caller, CancellationToken cancellation,
        IsolationLevel isolation = IsolationLevel.ReadCommitted)
    {
        var connection = await database.OpenConnectionAsync(cancellation);
        try
        {
            var transaction = await connection.BeginTransactionAsync(isolation, cancellation);
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
public sealed class CallerSession<TSession>(TSession session, NpgsqlConnection connection, NpgsqlTransaction transaction)
    : IAsyncDisposable
    where TSession : IQuerySession
{
    public TSession Session { get; } = session;

    /// <summary>Commits a session opened not to commit on save, after its last save.</summary>
    public Task CommitAsync(CancellationToken cancellation) => transaction.CommitAsync(cancellation);

    public async ValueTask DisposeAsync()
    {
        await Session.DisposeAsync();
        await connection.DisposeAsync();
    }
}
