using System.Data;
using Marten;
using SessionOptions = Marten.Services.SessionOptions;
using Npgsql;

namespace ManaSync.Web.Infrastructure.Isolation;

/// <summary>
/// Sessions that act for a caller, on connections of the restricted role (<see cref="RowSecurity.ConnectingAsAppRole"/>),
/// with the caller's identity set for each transaction (see <see cref="RowSecurity"/>). Every request path that touches
/// user data goes through here.
/// </summary>
public sealed class CallerSessions(IDocumentStore store, NpgsqlDataSource callers) : IAsyncDisposable
{
    /// <summary>A session whose saves stay in its transaction until <see cref="CallerSession{T}.CommitAsync"/>.</summary>
    public async Task<CallerSession<IDocumentSession>> WriteAsync(Caller caller, CancellationToken cancellation)
    {
        var (connection, transaction) = await BeginAsync(callers, IsolationLevel.ReadCommitted, cancellation);
        return new(store.LightweightSession(SessionOptions.ForTransaction(transaction, shouldAutoCommit: false)), store.Options.Serializer(),
            connection, transaction, () => RowSecurity.IdentityCommand(caller, takeTransactionId: true));
    }

    /// <summary>
    /// Reads in which every round trip stands alone: no transaction to begin or end, each batch its own implicit
    /// transaction (and snapshot), opened by the caller's identity. It takes no transaction id, so it holds back no cursor.
    /// </summary>
    public async Task<CallerSession<IQuerySession>> ReadAsync(Caller caller, CancellationToken cancellation) =>
        new(null, store.Options.Serializer(), await callers.OpenConnectionAsync(cancellation), null,
            () => RowSecurity.IdentityCommand(caller, takeTransactionId: false));

    /// <summary>Reads that must agree with each other: one repeatable-read snapshot, with a Marten session in it.</summary>
    public async Task<CallerSession<IQuerySession>> SnapshotAsync(Caller caller, CancellationToken cancellation)
    {
        var (connection, transaction) = await BeginAsync(callers, IsolationLevel.RepeatableRead, cancellation);
        return new(store.QuerySession(SessionOptions.ForTransaction(transaction)), store.Options.Serializer(), connection, transaction,
            () => RowSecurity.IdentityCommand(caller, takeTransactionId: false));
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
/// The caller's identity goes with the first statements sent (<see cref="ExecuteAsync"/>), in their round trip
/// (a request's round trips cost more than most of its statements), or with every batch when there is no transaction.
/// </summary>
/// <param name="session">Marten's session in the transaction; null for a read without one.</param>
/// <param name="identity">Makes the statement that sets the caller: one row, whose last column is the transaction id
/// (null for a reader).</param>
public sealed class CallerSession<TSession>(TSession? session, ISerializer serializer, NpgsqlConnection connection,
    NpgsqlTransaction? transaction, Func<NpgsqlBatchCommand> identity)
    : IAsyncDisposable
    where TSession : class, IQuerySession
{
    private bool _identitySent;
    private long? _transactionId;

    /// <summary>The Marten session of a transaction, once the identity is sent: until then the connection would see nothing.</summary>
    public TSession Session => session is not null && _identitySent
        ? session
        : throw new InvalidOperationException(session is null
            ? "A read without a transaction has no Marten session: use ExecuteAsync."
            : "The caller's identity is sent with the session's first statements: call ExecuteAsync first.");

    /// <summary>How Marten writes documents: to read them from <see cref="ExecuteAsync"/>'s results.</summary>
    public ISerializer Serializer { get; } = serializer;

    /// <summary>A writer's transaction id (xid8): the position of everything it stores.</summary>
    public long TransactionId => _transactionId ?? throw new InvalidOperationException("Only a writer that has sent its first statements has a transaction id.");

    /// <summary>
    /// Sends the commands in one round trip, preceded by the caller's identity where it is not yet in force. The reader
    /// starts at the first command's result.
    /// </summary>
    public async Task<NpgsqlDataReader> ExecuteAsync(IEnumerable<NpgsqlBatchCommand> commands, CancellationToken cancellation)
    {
        var withIdentity = transaction is null || !_identitySent;
        var batch = new NpgsqlBatch(connection, transaction);
        if (withIdentity) batch.BatchCommands.Add(identity());
        foreach (var command in commands) batch.BatchCommands.Add(command);
        var reader = await batch.ExecuteReaderAsync(cancellation);
        if (withIdentity)
        {
            await reader.ReadAsync(cancellation);
            var last = reader.FieldCount - 1;
            if (!await reader.IsDBNullAsync(last, cancellation)) _transactionId = reader.GetInt64(last);
            _identitySent = true;
            await reader.NextResultAsync(cancellation);
        }
        return reader;
    }

    /// <summary>Commits a writer's transaction, after its last save.</summary>
    public Task CommitAsync(CancellationToken cancellation) =>
        transaction?.CommitAsync(cancellation) ?? throw new InvalidOperationException("A read without a transaction has nothing to commit.");

    public async ValueTask DisposeAsync()
    {
        if (session is not null) await session.DisposeAsync();
        await connection.DisposeAsync();
    }
}
