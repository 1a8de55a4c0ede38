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
    /// <summary>A session whose saves stay in its transaction until <see cref="CallerSession{T}.CommitAsync"/>.</summary>
    public async Task<CallerSession<IDocumentSession>> WriteAsync(Caller caller, CancellationToken cancellation)
    {
        var (connection, transaction, transactionId) = await BeginAsync(caller, cancellation, writer: true);
        return new(store.LightweightSession(SessionOptions.ForTransaction(transaction, shouldAutoCommit: false)),
            connection, transaction, transactionId!.Value);
    }

    /// <summary>A read-only session; it takes no transaction id, so it holds back no cursor.</summary>
    public async Task<CallerSession<IQuerySession>> ReadAsync(Caller caller, CancellationToken cancellation,
        IsolationLevel isolation = IsolationLevel.ReadCommitted)
    {
        var (connection, transaction, _) = await BeginAsync(caller, cancellation, writer: false, isolation);
        return new(store.QuerySession(SessionOptions.ForTransaction(transaction)), connection, transaction, null);
    }

    private async Task<(NpgsqlConnection, NpgsqlTransaction, long?)> BeginAsync(Caller caller, CancellationToken cancellation,
        bool writer, IsolationLevel isolation = IsolationLevel.ReadCommitted)
    {
        var connection = await database.OpenConnectionAsync(cancellation);
        try
        {
            var transaction = await connection.BeginTransactionAsync(isolation, cancellation);
            var transactionId = await RowSecurity.ActAsAsync(connection, transaction, caller, cancellation, takeTransactionId: writer);
            return (connection, transaction, transactionId);
        }
        catch
        {
            await connection.DisposeAsync();
            throw;
        }
    }
}

/// <summary>A session and the connection it owns; disposing ends both (an uncommitted transaction rolls back).</summary>
public sealed class CallerSession<TSession>(TSession session, NpgsqlConnection connection, NpgsqlTransaction transaction,
    long? transactionId)
    : IAsyncDisposable
    where TSession : IQuerySession
{
    public TSession Session { get; } = session;

    /// <summary>A writer's transaction id (xid8): the position of everything it stores.</summary>
    public long TransactionId => transactionId ?? throw new InvalidOperationException("A read session has no transaction id.");

    /// <summary>Commits a writer's transaction, after its last save.</summary>
    public Task CommitAsync(CancellationToken cancellation) => transaction.CommitAsync(cancellation);

    public async ValueTask DisposeAsync()
    {
        await Session.DisposeAsync();
        await connection.DisposeAsync();
    }
}
