using System.Data;
using Marten;
using SessionOptions = Marten.Services.SessionOptions;
using Npgsql;

namespace ManaSync.Web.Infrastructure.Isolation;

/// <summary>
/// Marten sessions that act for a caller: each runs in its own transaction, on a connection of the
/// restricted role (<see cref="RowSecurity.ConnectingAsAppRole"/>), with the caller's identity set
/// (see <see cref="RowSecurity"/>). Every request path that touches user data goes through here.
/// </summary>
public sealed class CallerSessions(IDocumentStore store, NpgsqlDataSource callers) : IAsyncDisposable
{
    /// <summary>A session whose saves stay in its transaction until <see cref="CallerSession{T}.CommitAsync"/>.</summary>
    public async Task<CallerSession<IDocumentSession>> WriteAsync(Caller caller, CancellationToken cancellation)
    {
        var (connection, transaction) = await BeginAsync(callers, IsolationLevel.ReadCommitted, cancellation);
        return new(store.LightweightSession(SessionOptions.ForTransaction(transaction, shouldAutoCommit: false)),
            connection, transaction, RowSecurity.IdentityCommand(caller, takeTransactionId: true));
    }

    /// <summary>A read-only session; it takes no transaction id, so it holds back no cursor.</summary>
    public async Task<CallerSession<IQuerySession>> ReadAsync(Caller caller, CancellationToken cancellation,
        IsolationLevel isolation = IsolationLevel.ReadCommitted)
    {
        var (connection, transaction) = await BeginAsync(callers, isolation, cancellation);
        return new(store.QuerySession(SessionOptions.ForTransaction(transaction)), connection, transaction,
            RowSecurity.IdentityCommand(caller, takeTransactionId: false));
    }

    /// <summary>Opens a connection and begins a transaction; Npgsql sends the begin with the first statement.</summary>
    public static async Task<(NpgsqlConnection, NpgsqlTransaction)> BeginAsync(NpgsqlDataSource database, IsolationLevel isolation,
        CancellationToken cancellation)
    {
        var connection = await database.OpenConnectionAsync(cancellation);
        try
        {
            return (connection, await connection.BeginTransactionAsync(isolation, cancellation));
        }
        catch
        {
            await connection.DisposeAsync();
            throw;
        }
    }

    public ValueTask DisposeAsync() => callers.DisposeAsync();
}

/// <summary>
/// A session and the connection it owns; disposing ends both (an uncommitted transaction rolls back).
/// The caller's identity goes with the first statements sent (<see cref="ExecuteAsync"/>), in their round trip:
/// a request's round trips cost more than most of its statements.
/// </summary>
/// <param name="identity">One row whose last column is the transaction id, or null for a reader.</param>
public sealed class CallerSession<TSession>(TSession session, NpgsqlConnection connection, NpgsqlTransaction transaction,
    NpgsqlBatchCommand identity)
    : IAsyncDisposable
    where TSession : IQuerySession
{
    private NpgsqlBatchCommand? _pendingIdentity = identity;
    private long? _transactionId;

    /// <summary>The Marten session, once the identity is sent: until then the connection would see nothing.</summary>
    public TSession Session => _pendingIdentity is null
        ? session
        : throw new InvalidOperationException("The caller's identity is sent with the session's first statements: call ExecuteAsync first.");

    /// <summary>A writer's transaction id (xid8): the position of everything it stores.</summary>
    public long TransactionId => _transactionId ?? throw new InvalidOperationException("Only a writer that has sent its first statements has a transaction id.");

    /// <summary>
    /// Sends the commands in one round trip, in the session's transaction, preceded by the caller's identity if it
    /// is not yet sent. The reader starts at the first command's result.
    /// </summary>
    public async Task<NpgsqlDataReader> ExecuteAsync(IEnumerable<NpgsqlBatchCommand> commands, CancellationToken cancellation)
    {
        var batch = new NpgsqlBatch(connection, transaction);
        if (_pendingIdentity is { } identity) batch.BatchCommands.Add(identity);
        foreach (var command in commands) batch.BatchCommands.Add(command);
        var reader = await batch.ExecuteReaderAsync(cancellation);
        if (_pendingIdentity is not null)
        {
            await reader.ReadAsync(cancellation);
            var last = reader.FieldCount - 1;
            _transactionId = await reader.IsDBNullAsync(last, cancellation) ? null : reader.GetInt64(last);
            _pendingIdentity = null;
            await reader.NextResultAsync(cancellation);
        }
        return reader;
    }

    /// <summary>Commits a writer's transaction, after its last save.</summary>
    public Task CommitAsync(CancellationToken cancellation) => transaction.CommitAsync(cancellation);

    public async ValueTask DisposeAsync()
    {
        await session.DisposeAsync();
        await connection.DisposeAsync();
    }
}
