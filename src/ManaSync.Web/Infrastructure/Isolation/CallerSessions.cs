using System.Data;
using ManaSync.Web.Configuration;
using ManaSync.Projections.Records;
using ManaSync.Web.Features.Sync;
using ManaSync.Web.Infrastructure.Sharding;
using ManaSync.Web.Infrastructure.Tracing;
using Marten;
using SessionOptions = Marten.Services.SessionOptions;
using Npgsql;

namespace ManaSync.Web.Infrastructure.Isolation;

/// <summary>
/// Sessions that act for a caller, on connections of the restricted role (<see cref="RowSecurity.ConnectingAsAppRole"/>),
/// with the caller's identity set for each transaction (see <see cref="RowSecurity"/>). Every request path that touches
/// user data goes through here. With shards there is a pool per shard, and a session is on one shard (main unless
/// named); a writer's position is then a stamp (<see cref="FeedStamps"/>), not its transaction id.
/// </summary>
public sealed class CallerSessions(IDocumentStore store, IReadOnlyDictionary<string, NpgsqlDataSource> callers, ShardMap shards)
    : IAsyncDisposable
{
    /// <summary>A session whose saves stay in its transaction until <see cref="CallerSession{T}.CommitAsync"/>.</summary>
    public async Task<CallerSession<IDocumentSession>> WriteAsync(Caller caller, CancellationToken cancellation, string shard = ShardList.Main)
    {
        var (connection, transaction) = await BeginAsync(callers[shard], IsolationLevel.ReadCommitted, cancellation);
        return new(store.LightweightSession(OnShard(SessionOptions.ForTransaction(transaction, shouldAutoCommit: false), shard)),
            store.Options.Serializer(), connection, transaction,
            () => RowSecurity.IdentityCommand(caller, Sharded ? FeedStamps.TakeSql : RowSecurity.TransactionIdSql), entersScopes: Sharded);
    }

    /// <summary>
    /// Reads in which every round trip stands alone: no transaction to begin or end, each batch its own implicit
    /// transaction (and snapshot), opened by the caller's identity. It takes no position, so it holds back no cursor.
    /// </summary>
    public async Task<CallerSession<IQuerySession>> ReadAsync(Caller caller, CancellationToken cancellation, string shard = ShardList.Main) =>
        new(null, store.Options.Serializer(), await callers[shard].OpenConnectionAsync(cancellation), null,
            () => RowSecurity.IdentityCommand(caller, null));

    /// <summary>Reads that must agree with each other: one repeatable-read snapshot of a shard, with a Marten session in it.</summary>
    public async Task<CallerSession<IQuerySession>> SnapshotAsync(Caller caller, CancellationToken cancellation, string shard = ShardList.Main)
    {
        var (connection, transaction) = await BeginAsync(callers[shard], IsolationLevel.RepeatableRead, cancellation);
        return new(store.QuerySession(OnShard(SessionOptions.ForTransaction(transaction), shard)), store.Options.Serializer(), connection, transaction,
            () => RowSecurity.IdentityCommand(caller, null));
    }

    /// <summary>Every shard, main first (then as SHARDS lists them): where a user's own events may be, since they write into
    /// their spaces' shards too.</summary>
    public IReadOnlyList<string> AllShards => shards.Shards.All.Select(shard => shard.Name).ToList();

    public bool Sharded => callers.Count > 1;

    /// <summary>The shards holding the caller's scopes, main first.</summary>
    public async Task<IReadOnlyList<string>> ShardsOfAsync(Caller caller, CancellationToken cancellation)
    {
        if (!Sharded) return [ShardList.Main];
        var homes = (await HomesAsync(caller, caller.Scopes, cancellation)).Values.ToHashSet();
        return AllShards.Where(homes.Contains).ToList();
    }

    /// <summary>One page of the caller's feed: from main alone, or with shards from every shard holding the caller's scopes.</summary>
    public async Task<FeedPage> ReadFeedAsync(Caller caller, FeedRequest request, CancellationToken cancellation)
    {
        using var span = SyncTracing.Source.StartActivity(SyncTracing.FeedRead);
        var page = await ReadFeedUntracedAsync(caller, request, cancellation);
        span?.SetTag("manasync.changes", page.Entries.Count);
        return page;
    }

    private async Task<FeedPage> ReadFeedUntracedAsync(Caller caller, FeedRequest request, CancellationToken cancellation)
    {
        if (!Sharded)
        {
            await using var session = await ReadAsync(caller, cancellation);
            return await ChangeFeed.ReadAsync(session, request, cancellation);
        }

        try
        {
            return await ReadShardsAsync(caller, request, acceptFenced: false, cancellation);
        }
        catch (ScopesFencedException moved)
        {
            // A scope has moved: read where the shard map says now (still there if the move has not switched yet).
            shards.Forget(moved.Scopes);
            return await ReadShardsAsync(caller, request, acceptFenced: true, cancellation);
        }
    }

    private async Task<FeedPage> ReadShardsAsync(Caller caller, FeedRequest request, bool acceptFenced, CancellationToken cancellation)
    {
        var homes = await HomesAsync(caller, request.Scopes, cancellation);
        var reads = new List<ShardRead>();
        try
        {
            foreach (var shard in request.Scopes.GroupBy(scope => homes[scope]))
                reads.Add(new ShardRead(shard.Key, await ReadAsync(caller, cancellation, shard.Key), shard.ToList()));
            // Main's session serves the feed clock too; it is used before and after the shards' reads, never beside them.
            var main = reads.FirstOrDefault(read => read.Shard == ShardList.Main)?.Session;
            await using var ownMain = main is null ? await ReadAsync(caller, cancellation) : null;
            return await ShardedFeed.ReadAsync(main ?? ownMain!, reads, request, acceptFenced, cancellation);
        }
        finally
        {
            foreach (var read in reads) await read.Session.DisposeAsync();
        }
    }

    /// <summary>The shard of each scope (main for all, unsharded); a space never seen before is placed with the caller.</summary>
    public async Task<IReadOnlyDictionary<string, string>> HomesAsync(Caller caller, IEnumerable<string> scopes, CancellationToken cancellation)
    {
        if (!Sharded) return scopes.Distinct().ToDictionary(scope => scope, _ => ShardList.Main);
        var own = RecordKey.UserScope(caller.UserId);
        var ownHome = (await shards.HomesAsync([own], cancellation))[own];
        return await shards.HomesAsync(scopes.Append(own), cancellation, spacesWith: ownHome);
    }

    /// <summary>Forgets where these scopes live (a write found one gone from there).</summary>
    public void Forget(IEnumerable<string> scopes) => shards.Forget(scopes);

    private SessionOptions OnShard(SessionOptions options, string shard)
    {
        if (Sharded) options.TenantId = shard;
        return options;
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

    public async ValueTask DisposeAsync()
    {
        foreach (var pool in callers.Values) await pool.DisposeAsync();
    }
}

/// <summary>
/// A session and the connection it owns; disposing ends both (an uncommitted transaction rolls back).
/// The caller's identity goes with the first statements sent (<see cref="ExecuteAsync"/>), in their round trip
/// (a request's round trips cost more than most of its statements), or with every batch when there is no transaction.
/// </summary>
/// <param name="session">Marten's session in the transaction; null for a read without one.</param>
/// <param name="identity">Makes the statement that sets the caller: one row, whose last column is the transaction id
/// (null for a reader).</param>
/// <param name="entersScopes">A writer on a shard of several: it enters the scopes it writes (<see cref="ScopeFences"/>).</param>
public sealed class CallerSession<TSession>(TSession? session, ISerializer serializer, NpgsqlConnection connection,
    NpgsqlTransaction? transaction, Func<NpgsqlBatchCommand> identity, bool entersScopes = false)
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

    public bool EntersScopes => entersScopes;

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
