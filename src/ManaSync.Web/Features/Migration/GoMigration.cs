using System.Data;
using ManaSync.Events;
using ManaSync.Events.Upcasting;
using ManaSync.Projections.Records;
using ManaSync.Web.Features.Sync;
using Marten;
using Npgsql;
using SessionOptions = Marten.Services.SessionOptions;

namespace ManaSync.Web.Features.Migration;

/// <summary>What one chunk of rows came to.</summary>
/// <param name="Refused">Rows of an app id ManaSync cannot serve (it names event streams and URLs: <see cref="AppId"/>).</param>
public sealed record ChunkResult(int Stored, int Skipped, int Refused);

/// <summary>
/// Stores rows of the Go service as events, one chunk per transaction, in the order the Go service
/// received them: idempotently by eventId (the row's id), merged into the record view like pushed
/// changes (records placed and moved as <see cref="RecordHomes"/> decides), under the same locks as
/// pushes, so a server may run meanwhile.
/// </summary>
/// <remarks>
/// Each chunk marks its transaction with the latest receive time of its rows (<see cref="FeedClock"/>), so
/// a legacy cursor of a device that synced with the Go service reads from the first chunk it lacks. It
/// runs as a role that bypasses row security: one chunk holds many users' changes.
/// </remarks>
public sealed class GoMigration(IDocumentStore store, NpgsqlDataSource database, ChangeUpcasting upcasting, TimeSpan maxClockSkew,
    IReadOnlyDictionary<string, string[]> spacesOfUsers)
{
    /// <param name="receivedUpTo">The time to mark the chunk with: its latest row's, or later when the source says so.</param>
    public async Task<ChunkResult> StoreAsync(IReadOnlyList<GoRow> rows, DateTimeOffset receivedUpTo, CancellationToken cancellation)
    {
        await using var connection = await database.OpenConnectionAsync(cancellation);
        await using var transaction = await connection.BeginTransactionAsync(IsolationLevel.ReadCommitted, cancellation);
        await using var session = store.LightweightSession(SessionOptions.ForTransaction(transaction, shouldAutoCommit: false));
        var commitTx = (await session.QueryAsync<long>("select pg_current_xact_id()::text::bigint", cancellation))[0];

        var events = rows.Select((row, index) => row.ToEvent(commitTx, index, maxClockSkew)).Where(e => AppId.IsValid(e.AppId)).ToList();
        var refused = rows.Count - events.Count;
        var stored = (await EventLog.StoredAsync(session, [.. events.Select(e => e.EventId)], cancellation)).Select(e => e.EventId).ToHashSet();
        var fresh = events.Where(e => !stored.Contains(e.EventId)).ToList();
        if (fresh.Count == 0) return new ChunkResult(0, events.Count, refused);

        var placed = (await RecordHomes.PlaceAsync(session, fresh, ScopesOf, spacesKnown: true, [], upcasting, cancellation))!;
        foreach (var stream in placed.GroupBy(e => WriteLocks.Stream(e.AppId, e.UserId)))
            EventLog.Append(session, stream.Key, stream);
        await using (var mark = SessionBatch.For(session, FeedClock.MarkCommand(receivedUpTo)))
            await mark.ExecuteNonQueryAsync(cancellation);
        await session.SaveChangesAsync(cancellation);
        await transaction.CommitAsync(cancellation);
        return new ChunkResult(fresh.Count, events.Count - fresh.Count, refused);
    }

    /// <summary>The scopes a user's changes may be about: their own, and the spaces they wrote into.</summary>
    private IReadOnlyList<string> ScopesOf(string userId) =>
        [RecordKey.UserScope(userId), .. spacesOfUsers.GetValueOrDefault(userId, [])
            .Where(space => RecordKey.IsShared(space, userId))
            .Select(RecordKey.SpaceScope)];
}
