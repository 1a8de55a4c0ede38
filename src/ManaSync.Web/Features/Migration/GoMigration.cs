using System.Data;
using ManaSync.Events.Upcasting;
using ManaSync.Projections.Records;
using ManaSync.Web.Features.Sync;
using ManaSync.Web.Features.WritePath;
using ManaSync.Web.Infrastructure.Isolation;
using Marten;
using Npgsql;
using SessionOptions = Marten.Services.SessionOptions;

namespace ManaSync.Web.Features.Migration;

/// <summary>What one chunk of rows came to.</summary>
/// <param name="Refused">Rows of an app id ManaSync cannot serve (it names event streams and URLs: <see cref="AppId"/>).</param>
public sealed record ChunkResult(int Stored, int Skipped, int Refused);

/// <summary>
/// Stores rows of the Go service through the write path pushes take (<see cref="ChangeWriter"/>), one chunk
/// per transaction, in the order the Go service received them: idempotently by eventId (the row's id),
/// placed, locked, merged and announced like pushed changes, so a server may run meanwhile.
/// </summary>
/// <remarks>
/// Each chunk marks its transaction with the latest receive time of its rows (<see cref="FeedClock"/>), so
/// a legacy cursor of a device that synced with the Go service reads from the first chunk it lacks. It
/// runs as a role that bypasses row security: one chunk holds many users' changes.
/// </remarks>
public sealed class GoMigration(IDocumentStore store, NpgsqlDataSource database, ChangeUpcasting upcasting, TimeSpan maxClockSkew,
    IReadOnlyDictionary<string, string[]> spacesOfUsers)
{
    private readonly Dictionary<string, Caller> _writers = new();

    /// <param name="receivedUpTo">The time to mark the chunk with: its latest row's, or later when the source says so.</param>
    public async Task<ChunkResult> StoreAsync(IReadOnlyList<GoRow> rows, DateTimeOffset receivedUpTo, CancellationToken cancellation)
    {
        var changes = rows.Select(row => row.ToIncoming()).Where(change => AppId.IsValid(change.AppId)).ToList();
        var outcome = await ChangeWriter.StoreAsync(
            new WriteRequest(BeginAsync, WriterOf, upcasting, maxClockSkew, TimeProvider.System,
                BeforeCommit: async (scope, cancel) =>
                {
                    await using var mark = await scope.ExecuteAsync([FeedClock.MarkCommand(receivedUpTo)], cancel);
                }),
            changes, cancellation);
        if (outcome.Refusal is { } refusal) throw new InvalidOperationException($"The chunk was refused: {refusal.Message}");
        return new ChunkResult(outcome.Stored, outcome.Skipped, rows.Count - changes.Count);
    }

    private async Task<CallerSession<IDocumentSession>> BeginAsync(CancellationToken cancellation)
    {
        var (connection, transaction) = await CallerSessions.BeginAsync(database, IsolationLevel.ReadCommitted, cancellation);
        return new CallerSession<IDocumentSession>(store.LightweightSession(SessionOptions.ForTransaction(transaction, shouldAutoCommit: false)),
            store.Options.Serializer(), connection, transaction, () => new NpgsqlBatchCommand($"select {RowSecurity.TransactionIdSql}"));
    }

    /// <summary>A user writes into their own scope and the spaces they wrote into on the Go service.</summary>
    private Caller WriterOf(string userId)
    {
        if (!_writers.TryGetValue(userId, out var writer))
            _writers[userId] = writer = new Caller(userId,
                spacesOfUsers.GetValueOrDefault(userId, []).Where(space => RecordKey.IsShared(space, userId)).ToList());
        return writer;
    }
}
