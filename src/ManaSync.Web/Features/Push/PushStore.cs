using ManaSync.Events;
using ManaSync.Projections.Records;
using ManaSync.Web.Features.Live;
using ManaSync.Web.Infrastructure;
using ManaSync.Web.Features.Sync;
using ManaSync.Web.Infrastructure.Isolation;
using Marten;
using Npgsql;

namespace ManaSync.Web.Features.Push;

/// <summary>
/// Stores a push in one transaction: every change becomes an event and is merged into its record
/// view, and every node is notified of the commit, or nothing is stored at all.
/// </summary>
public static class PushStore
{
    private const int Attempts = 3;

    public static async Task<PushOutcome> StoreAsync(CallerSessions sessions, Caller caller, PushBatch batch,
        Func<long, PushContext> contextAt, TimeProvider time, CancellationToken cancellation)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await StoreOnceAsync(sessions, caller, batch, contextAt, time, cancellation);
            }
            catch (Exception e) when (ViolatedConstraint(e) == EventIdIndex && attempt > 1)
            {
                // Still taken after a rerun that saw every event the caller may see: the id belongs to
                // another user's change, which row-level security rightly hides.
                return PushOutcome.Clashed(new PushFault("An eventId in this batch is already used by another change.", null));
            }
            catch (Exception e) when (attempt < Attempts && IsRetryable(e))
            {
                // A concurrent retry stored the same eventId first (or a deadlock was broken):
                // run again, and the stored events will now be recognised.
            }
        }
    }

    private static async Task<PushOutcome> StoreOnceAsync(CallerSessions sessions, Caller caller, PushBatch batch,
        Func<long, PushContext> contextAt, TimeProvider time, CancellationToken cancellation)
    {
        await using var scope = await sessions.WriteAsync(caller, cancellation);
        var session = scope.Session;
        var context = contextAt(scope.TransactionId);

        var streamKey = WriteLocks.Stream(context.AppId, context.UserId);
        var locks = WriteLocks.SpaceLockKeys(batch.Changes.Select(change => (context.AppId, context.UserId, change.SpaceId)))
            .Append(WriteLocks.StreamLockKey(streamKey))
            .ToHashSet();
        var candidateKeys = RecordHomes.CandidateKeys(
            batch.Changes.Select(change => (context.AppId, change.Table, change.RecordId, RecordKey.ScopeOf(context.UserId, change.SpaceId))),
            context.Scopes);
        var eventIds = batch.Changes.Select(change => change.EventId).OfType<Guid>().ToArray();
        var newLocks = locks.ToList();
        while (true)
        {
            var (stored, views) = await LockAndReadAsync(session, newLocks, candidateKeys, eventIds, cancellation);
            var outcome = PushDecider.Decide(batch, context, stored, views);
            if (outcome.Clash is not null || outcome.Unplaced is not null || outcome.Events.Count == 0) return outcome;

            // A record found in a space the batch does not name (moved there, or moving out of it) is written
            // under that space's lock too: take it, and decide again on what it guards.
            newLocks = RecordHomes.SpaceLocksWritten(outcome.Events).Where(locks.Add).ToList();
            if (newLocks.Count > 0) continue;

            EventLog.Append(session, streamKey, outcome.Events);
            await CommitNotice.SendAsync(session, ChangesCommitted.Of(context.UserId, context.AppId, outcome.Events, time.GetUtcNow()), cancellation);
            await session.SaveChangesAsync(cancellation);
            return outcome;
        }
    }

    /// <summary>
    /// Takes the write locks, then reads what they guard — the events already stored under the batch's
    /// eventIds and the views the batch may touch — in one round trip.
    /// </summary>
    private static async Task<(Dictionary<Guid, StoredEvent> Stored, Dictionary<string, RecordView> Views)> LockAndReadAsync(
        IDocumentSession session, IEnumerable<string> lockKeys, string[] recordKeys, Guid[] eventIds, CancellationToken cancellation)
    {
        await using var read = SessionBatch.For(session,
            WriteLocks.Command(lockKeys),
            EventLog.StoredCommand(eventIds),
            RecordHomes.ReadCommand(recordKeys));
        await using var reader = await read.ExecuteReaderAsync(cancellation);
        await reader.NextResultAsync(cancellation);
        var stored = (await SessionBatch.ReadDocumentsAsync<ChangeRecorded>(reader, session, cancellation))
            .ToDictionary(e => e.EventId, e => new StoredEvent(e.EventId, e.UserId, e.PayloadHash));
        await reader.NextResultAsync(cancellation);
        var views = (await SessionBatch.ReadDocumentsAsync<RecordView>(reader, session, cancellation)).ToDictionary(view => view.Id);
        return (stored, views);
    }

    private const string EventIdIndex = "idx_mt_events_event_id";

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
