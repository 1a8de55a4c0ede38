using ManaSync.Events;
using ManaSync.Events.Upcasting;
using ManaSync.Projections.Records;
using ManaSync.Web.Features.Live;
using ManaSync.Web.Features.Sync;
using ManaSync.Web.Infrastructure.Isolation;
using ManaSync.Web.Infrastructure.Sharding;
using Marten;
using Npgsql;

namespace ManaSync.Web.Features.WritePath;

/// <summary>How a write path stores its changes.</summary>
/// <param name="Begin">Opens the transaction the changes are stored in (as the caller, or for a migration as a role
/// that bypasses row security).</param>
/// <param name="WriterOf">Who writes a user's changes.</param>
/// <param name="ReportConflicts">Whether to work out which fields lost last-write-wins (a push answers with them).</param>
/// <param name="BeforeCommit">Runs in the transaction after the last change is stored.</param>
/// <param name="HeldHere">With shards, the scopes the shard written holds (<see cref="RecordHomes.Place"/>).</param>
public sealed record WriteRequest(
    Func<CancellationToken, Task<CallerSession<IDocumentSession>>> Begin,
    Func<string, Caller> WriterOf,
    ChangeUpcasting Upcasting,
    TimeSpan MaxClockSkew,
    TimeProvider Time,
    bool ReportConflicts = false,
    Func<CallerSession<IDocumentSession>, CancellationToken, Task>? BeforeCommit = null,
    IReadOnlySet<string>? HeldHere = null);

/// <param name="Stored">Events appended.</param>
/// <param name="Skipped">Changes already stored (retries).</param>
public sealed record WriteOutcome(int Stored, int Skipped, IReadOnlyList<WireConflict> Conflicts, WriteRefusal? Refusal)
{
    public static WriteOutcome Refused(WriteRefusal refusal) => new(0, 0, [], refusal);
}

/// <summary>
/// The one way changes are stored, whether pushed, restored from an archive or migrated: in one transaction,
/// all or nothing, each change made into an event (<see cref="IncomingChange.ToEvent"/>), a retry of a stored
/// event recognised by its eventId and payload (<see cref="ChangePayload"/>), every other change placed and merged
/// under the write locks of what it touches (<see cref="WriteLocks"/>), appended (the inline projection merges it
/// into its record view in the same transaction) and announced to every node by the committing transaction itself.
/// </summary>
public static class ChangeWriter
{
    private const int Attempts = 3;
    private const string EventIdIndex = "idx_mt_events_event_id";

    /// <param name="chunks">The changes, in storing order, in chunks that each fit in memory; enumerated again on a retry.</param>
    public static async Task<WriteOutcome> StoreAsync(WriteRequest request, Func<IAsyncEnumerable<IReadOnlyList<IncomingChange>>> chunks,
        CancellationToken cancellation)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await StoreOnceAsync(request, chunks(), cancellation);
            }
            catch (Exception e) when (ViolatedConstraint(e) == EventIdIndex && attempt > 1)
            {
                return WriteOutcome.Refused(WriteRefusal.TakenByAnotherUser());
            }
            catch (Exception e) when (attempt < Attempts && IsRetryable(e))
            {
                // A concurrent retry stored the same eventId first (or a deadlock was broken):
                // run again, and the stored events will now be recognised.
            }
        }
    }

    public static Task<WriteOutcome> StoreAsync(WriteRequest request, IReadOnlyList<IncomingChange> changes, CancellationToken cancellation) =>
        StoreAsync(request, () => new[] { changes }.ToAsyncEnumerable(), cancellation);

    private static async Task<WriteOutcome> StoreOnceAsync(WriteRequest request, IAsyncEnumerable<IReadOnlyList<IncomingChange>> chunks,
        CancellationToken cancellation)
    {
        await using var scope = await request.Begin(cancellation);
        var locks = new HashSet<string>();
        var (stored, skipped, position) = (0, 0, 0);
        var conflicts = new List<WireConflict>();
        await foreach (var chunk in chunks.WithCancellation(cancellation))
        {
            var (decision, merged) = await DecideUnderLocksAsync(scope, chunk, position, locks, request, cancellation);
            position += chunk.Count;
            if (decision.Refusal is { } refusal) return WriteOutcome.Refused(refusal);
            skipped += decision.Skipped;
            conflicts.AddRange(decision.Conflicts);
            if (decision.Events.Count == 0) continue;

            var session = scope.Session;
            foreach (var stream in decision.Events.GroupBy(e => WriteLocks.Stream(e.AppId, e.UserId)))
                EventLog.Append(session, stream.Key, stream);
            // The decision merged the views with its events in their order. Marten hands the projection the events
            // stream by stream: the same order for a push (one stream); otherwise the projection merges again.
            MergedViews.Hand(session, decision.Events, merged);
            // A chunk's notices go with its events; an import of several chunks announces each (a reread more, no change missed).
            foreach (var notice in ChangesCommitted.Of(decision.Events, request.Time.GetUtcNow())) CommitNotice.Queue(session, notice);
            await session.SaveChangesAsync(cancellation);
            stored += decision.Events.Count;
        }

        if (request.BeforeCommit is { } beforeCommit) await beforeCommit(scope, cancellation);
        await scope.CommitAsync(cancellation);
        return new WriteOutcome(stored, skipped, conflicts, null);
    }

    /// <summary>
    /// Takes the locks of the streams and named spaces the changes write, reads what they guard (the events stored
    /// under the changes' eventIds, the views the changes may touch) in the same round trip, makes the changes into
    /// events and decides. A record found in a space the changes do not name (moved there, or moving out of it) is
    /// written under that space's lock too: then that lock is taken and the changes are decided again on what it guards.
    /// </summary>
    /// <param name="firstIndex">The chunk's first change's place among the transaction's changes.</param>
    /// <returns>The decision, and the views read merged with the events it stores.</returns>
    private static async Task<(WriteDecision, Dictionary<string, RecordView>)> DecideUnderLocksAsync(CallerSession<IDocumentSession> scope,
        IReadOnlyList<IncomingChange> chunk, int firstIndex, HashSet<string> locks, WriteRequest request, CancellationToken cancellation)
    {
        var newLocks = chunk.Select(change => WriteLocks.StreamLockKey(WriteLocks.Stream(change.AppId, change.UserId)))
            .Concat(WriteLocks.SpaceLockKeys(chunk.Select(change => (change.AppId, change.UserId, change.Space))))
            .Where(locks.Add)
            .ToList();
        var candidateKeys = chunk.GroupBy(change => change.UserId)
            .SelectMany(user => RecordHomes.CandidateKeys(
                user.Select(change => (change.AppId, change.Table, change.RecordId, RecordKey.ScopeOf(change.UserId, change.Space))),
                request.WriterOf(user.Key).Scopes))
            .Distinct()
            .ToArray();
        // Only an eventId a client chose can have been stored before.
        var chosenIds = chunk.Where(change => change.EventId is not null).Select(change => change.EventId!.Value).ToArray();
        List<ChangeRecorded>? changes = null;
        while (true)
        {
            var (stored, views) = await LockAndReadAsync(scope, newLocks, candidateKeys, chosenIds, cancellation);
            // The transaction id, every event's position, came with the first read.
            changes ??= chunk.Select((change, i) => change.ToEvent(scope.TransactionId, firstIndex + i, request.MaxClockSkew)).ToList();
            var decision = WriteDecider.Decide(changes, stored, views, request.WriterOf, request.Upcasting, request.ReportConflicts,
                request.HeldHere);
            if (decision.Refusal is not null || decision.Events.Count == 0) return (decision, views);
            newLocks = RecordHomes.SpaceLocksWritten(decision.Events).Where(locks.Add).ToList();
            if (newLocks.Count == 0) return (decision, views);
        }
    }

    private static async Task<(Dictionary<Guid, ChangeRecorded> Stored, Dictionary<string, RecordView> Views)> LockAndReadAsync(
        CallerSession<IDocumentSession> scope, List<string> lockKeys, string[] recordKeys, Guid[] eventIds, CancellationToken cancellation)
    {
        // Deployed clients choose no eventIds: then there is nothing stored to look for (planning the lookup alone cost more than the locks).
        List<NpgsqlBatchCommand> commands = [WriteLocks.Command(lockKeys)];
        // With shards, the scopes behind the locks are entered too: a scope that has left this shard is not written here.
        if (scope.EntersScopes && lockKeys.Count > 0) commands.Add(ScopeFences.EnterCommand(lockKeys.Select(WriteLocks.ScopeOf)));
        if (eventIds.Length > 0) commands.Add(EventLog.StoredCommand(eventIds));
        commands.Add(RecordHomes.ReadCommand(recordKeys));
        await using var reader = await scope.ExecuteAsync(commands, cancellation);
        if (scope.EntersScopes && lockKeys.Count > 0) await reader.NextResultAsync(cancellation);
        var stored = new Dictionary<Guid, ChangeRecorded>();
        if (eventIds.Length > 0)
        {
            await reader.NextResultAsync(cancellation);
            stored = (await SessionBatch.ReadDocumentsAsync<ChangeRecorded>(reader, scope.Serializer, cancellation)).ToDictionary(e => e.EventId);
        }
        await reader.NextResultAsync(cancellation);
        var views = (await SessionBatch.ReadDocumentsAsync<RecordView>(reader, scope.Serializer, cancellation)).ToDictionary(view => view.Id);
        return (stored, views);
    }

    private static bool IsRetryable(Exception e) =>
        Postgres(e) is { SqlState: PostgresErrorCodes.UniqueViolation or PostgresErrorCodes.DeadlockDetected };

    private static string? ViolatedConstraint(Exception e) =>
        Postgres(e) is { SqlState: PostgresErrorCodes.UniqueViolation } violation ? violation.ConstraintName : null;

    private static PostgresException? Postgres(Exception e)
    {
        for (var inner = (Exception?)e; inner is not null; inner = inner.InnerException)
            if (inner is PostgresException postgres) return postgres;
        return null;
    }
}
