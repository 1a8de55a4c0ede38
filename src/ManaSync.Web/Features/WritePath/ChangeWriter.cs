using System.Diagnostics;
using ManaSync.Events;
using ManaSync.Events.Upcasting;
using ManaSync.Projections.Records;
using ManaSync.Web.Features.Live;
using ManaSync.Web.Features.Sync;
using ManaSync.Web.Infrastructure.Isolation;
using ManaSync.Web.Infrastructure.Sharding;
using ManaSync.Web.Infrastructure.Tracing;
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
/// <param name="MovesTo">With shards, scopes of other shards this write also stores into: a record may move into them from here.</param>
/// <param name="Arriving">With shards, where events another shard decides may arrive in this one: their locks are held from the start.</param>
/// <param name="Exchange">After the changes are decided and stored: given the events decided here that live in another
/// shard (moved there), returns the events decided in another shard that live in this one, to store here too.</param>
public sealed record WriteRequest(
    Func<CancellationToken, Task<CallerSession<IDocumentSession>>> Begin,
    Func<string, Caller> WriterOf,
    ChangeUpcasting Upcasting,
    TimeSpan MaxClockSkew,
    TimeProvider Time,
    bool ReportConflicts = false,
    Func<CallerSession<IDocumentSession>, CancellationToken, Task>? BeforeCommit = null,
    IReadOnlySet<string>? HeldHere = null,
    IReadOnlySet<string>? MovesTo = null,
    IReadOnlyList<ArrivalSlot>? Arriving = null,
    Func<IReadOnlyList<ChangeRecorded>, CancellationToken, Task<IReadOnlyList<ChangeRecorded>>>? Exchange = null);

/// <summary>A scope of this shard that a writer's events decided in another shard may arrive in, and the app they are of.</summary>
public sealed record ArrivalSlot(string AppId, string UserId, string Scope)
{
    /// <summary>The locks arriving events are written under: the writer's stream, and the space's when the scope is one.</summary>
    public IEnumerable<string> LockKeys() => RecordKey.SpaceOf(Scope) is null
        ? [WriteLocks.StreamLockKey(WriteLocks.Stream(AppId, UserId))]
        : [WriteLocks.StreamLockKey(WriteLocks.Stream(AppId, UserId)), WriteLocks.SpaceLockKey(AppId, Scope)];

    public static ArrivalSlot Of(ChangeRecorded change) => new(change.AppId, change.UserId, RecordKey.Scope(change));
}

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
        using var span = SyncTracing.Source.StartActivity(SyncTracing.Write);
        await using var scope = await request.Begin(cancellation);
        var locks = new HashSet<string>();
        // Events another shard decides may arrive in this transaction: their locks are taken first, as every other part's are.
        if (request.Arriving is { Count: > 0 } arriving) await LockArrivalsAsync(scope, arriving, locks, cancellation);
        var (stored, skipped, position) = (0, 0, 0);
        var conflicts = new List<WireConflict>();
        var leaving = new List<ChangeRecorded>();
        await foreach (var chunk in chunks.WithCancellation(cancellation))
        {
            var (decision, merged) = await DecideUnderLocksAsync(scope, chunk, position, locks, request, cancellation);
            position += chunk.Count;
            if (decision.Refusal is { } refusal) return WriteOutcome.Refused(refusal);
            skipped += decision.Skipped;
            conflicts.AddRange(decision.Conflicts);
            stored += decision.Events.Count;
            var here = decision.Events;
            if (request.MovesTo is { Count: > 0 } movesTo)
            {
                // A record moved into a scope of another shard lives there now: its events are stored there (the move here too,
                // since it changed the view it left here); its view here would be read by nobody.
                leaving.AddRange(decision.Events.Where(e => RecordKey.ScopesOf(e).Any(movesTo.Contains)));
                here = decision.Events.Where(e => RecordKey.ScopesOf(e).Any(scope => !movesTo.Contains(scope))).ToList();
                foreach (var view in merged.Values.Where(view => movesTo.Contains(view.Scope)).ToList()) merged.Remove(view.Id);
            }
            if (here.Count > 0) await AppendAsync(scope, here, merged, request, cancellation);
        }

        if (request.Exchange is { } exchange && await exchange(leaving, cancellation) is { Count: > 0 } arrivals)
            await StoreArrivalsAsync(scope, arrivals, position, locks, request, cancellation);
        if (request.BeforeCommit is { } beforeCommit) await beforeCommit(scope, cancellation);
        using (SyncTracing.Source.StartActivity(SyncTracing.Commit)) await scope.CommitAsync(cancellation);
        span?.SetTag("manasync.stored", stored);
        span?.SetTag("manasync.skipped", skipped);
        return new WriteOutcome(stored, skipped, conflicts, null);
    }

    /// <param name="merged">The views the events touch merged with them, for the projection; null: it merges them itself.</param>
    private static async Task AppendAsync(CallerSession<IDocumentSession> scope, IReadOnlyList<ChangeRecorded> events,
        IReadOnlyDictionary<string, RecordView>? merged, WriteRequest request, CancellationToken cancellation)
    {
        var session = scope.Session;
        foreach (var stream in events.GroupBy(e => WriteLocks.Stream(e.AppId, e.UserId)))
            EventLog.Append(session, stream.Key, stream);
        // The decision merged the views with its events in their order. Marten hands the projection the events
        // stream by stream: the same order for a push (one stream); otherwise the projection merges again.
        if (merged is not null) MergedViews.Hand(session, events, merged);
        // A chunk's notices go with its events; an import of several chunks announces each (a reread more, no change missed).
        var notices = ChangesCommitted.Of(events, request.Time.GetUtcNow(), SyncTracing.CurrentTraceparent()).ToList();
        foreach (var notice in notices) CommitNotice.Queue(session, notice);
        if (Activity.Current is { Recorded: true } traced)
            traced.AddEvent(new ActivityEvent(SyncTracing.NoticeSent, tags: new ActivityTagsCollection { ["manasync.notices"] = notices.Count }));
        await session.SaveChangesAsync(cancellation);
    }

    private static async Task LockArrivalsAsync(CallerSession<IDocumentSession> scope, IEnumerable<ArrivalSlot> slots, HashSet<string> locks,
        CancellationToken cancellation)
    {
        var list = slots.ToList();
        var keys = list.SelectMany(slot => slot.LockKeys()).Where(locks.Add).ToList();
        if (keys.Count == 0) return;
        // The scopes the events arrive in are entered; the writer's stream here may belong to a scope this shard does not hold.
        await using var reader = await scope.ExecuteAsync([WriteLocks.Command(keys), ScopeFences.EnterCommand(list.Select(slot => slot.Scope))], cancellation);
    }

    /// <summary>
    /// Stores events another shard decided (records moved into scopes of this one) as they are, at this transaction's
    /// position, so readers of this shard find them after their cursors. One already here (a retry) is not stored again.
    /// </summary>
    private static async Task StoreArrivalsAsync(CallerSession<IDocumentSession> scope, IReadOnlyList<ChangeRecorded> arrivals, int firstIndex,
        HashSet<string> locks, WriteRequest request, CancellationToken cancellation)
    {
        await LockArrivalsAsync(scope, arrivals.Select(ArrivalSlot.Of), locks, cancellation);
        HashSet<Guid> present;
        await using (var reader = await scope.ExecuteAsync([EventLog.StoredCommand(arrivals.Select(e => e.EventId).ToArray())], cancellation))
            present = (await SessionBatch.ReadDocumentsAsync<ChangeRecorded>(reader, scope.Serializer, cancellation)).Select(e => e.EventId).ToHashSet();
        var fresh = arrivals.Where(e => !present.Contains(e.EventId))
            .Select((e, i) => e with { CommitTx = scope.TransactionId, CommitIndex = firstIndex + i })
            .ToList();
        if (fresh.Count > 0) await AppendAsync(scope, fresh, null, request, cancellation);
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
        using var span = SyncTracing.Source.StartActivity(SyncTracing.Decide);
        span?.SetTag("manasync.changes", chunk.Count);
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
            // Views of scopes another shard holds are left behind here by moves (or rebuilt from them): they are not the record.
            if (request.HeldHere is { } held)
                foreach (var foreign in views.Values.Where(view => !held.Contains(view.Scope)).ToList()) views.Remove(foreign.Id);
            // The transaction id, every event's position, came with the first read.
            changes ??= chunk.Select((change, i) => change.ToEvent(scope.TransactionId, firstIndex + i, request.MaxClockSkew)).ToList();
            var decision = WriteDecider.Decide(changes, stored, views, request.WriterOf, request.Upcasting, request.ReportConflicts,
                request.HeldHere, request.MovesTo);
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
