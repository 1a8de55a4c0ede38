using ManaSync.Events;
using ManaSync.Events.Upcasting;
using ManaSync.Projections.Records;
using ManaSync.Web.Features.Live;
using ManaSync.Web.Features.Sync;
using ManaSync.Web.Infrastructure.Isolation;
using Marten;
using Npgsql;

namespace ManaSync.Web.Features.Backup;

/// <param name="Refusal">Why nothing was stored, if so.</param>
public sealed record ImportOutcome(int Imported, int Skipped, ImportRefusal Refusal)
{
    public static ImportOutcome Refused(ImportRefusal refusal) => new(0, 0, refusal);
}

public enum ImportRefusal
{
    None,

    /// <summary>An eventId of the archive belongs to another user's change.</summary>
    EventIdTaken,

    /// <summary>The archive writes into a shared space the caller is not (or no longer) a member of.</summary>
    NotAMember,

    /// <summary>A record's place cannot be decided while the caller's spaces are unknown.</summary>
    MembershipsUnknown,
}

/// <summary>
/// Replays an archive's events into the caller's streams in one transaction: events whose eventId is
/// already stored are skipped, the rest are appended and merged like pushed changes, and every node is
/// notified of the commit.
/// </summary>
public static class ImportStore
{
    private const int ChunkSize = 500;

    public static async Task<ImportOutcome> StoreAsync(CallerSessions sessions, Caller caller, bool spacesKnown, BackupManifest manifest,
        IAsyncEnumerable<BackupLine> lines, TimeSpan maxClockSkew, ChangeUpcasting upcasting, TimeProvider time, CancellationToken cancellation)
    {
        await using var scope = await sessions.WriteAsync(caller, cancellation, commitOnSave: false);
        var session = scope.Session;
        var commitTx = scope.TransactionId;
        var locks = manifest.Apps.Select(app => WriteLocks.StreamLockKey(WriteLocks.Stream(app, caller.UserId))).ToHashSet();
        await WriteLocks.TakeAsync(session, locks, cancellation);

        var seen = new HashSet<Guid>();
        var (imported, skipped, index) = (0, 0, 0);
        var written = new Dictionary<string, (HashSet<string> Scopes, HashSet<string> Tables)>();
        try
        {
            await foreach (var chunk in lines.Chunk(ChunkSize).WithCancellation(cancellation))
            {
                var events = chunk.Select(line => line.ToEvent(caller.UserId, commitTx, index++, maxClockSkew)).ToList();
                var stored = (await EventLog.StoredAsync(session, events.Select(e => e.EventId).ToArray(), cancellation))
                    .Select(e => e.EventId).ToHashSet();
                var fresh = events.Where(e => !stored.Contains(e.EventId) && seen.Add(e.EventId)).ToList();
                skipped += events.Count - fresh.Count;
                if (fresh.Count == 0) continue;
                if (fresh.Any(e => RecordKey.IsShared(e.SpaceId, e.UserId) && !caller.IsMemberOf(e.SpaceId!)))
                    return ImportOutcome.Refused(ImportRefusal.NotAMember);

                if (await PlaceAsync(session, caller, spacesKnown, fresh, locks, upcasting, cancellation) is not { } placed)
                    return ImportOutcome.Refused(ImportRefusal.MembershipsUnknown);
                foreach (var stream in placed.GroupBy(e => e.AppId))
                    EventLog.Append(session, WriteLocks.Stream(stream.Key, caller.UserId), stream);
                await session.SaveChangesAsync(cancellation);
                imported += placed.Count;
                foreach (var e in placed)
                {
                    if (!written.TryGetValue(e.AppId, out var app)) written[e.AppId] = app = ([], []);
                    app.Scopes.Add(RecordKey.Scope(e));
                    if (e.MovedFrom is { } left) app.Scopes.Add(left);
                    app.Tables.Add(e.Table);
                }
            }
            foreach (var (app, (scopes, tables)) in written)
                await CommitNotice.SendAsync(session, new ChangesCommitted(caller.UserId, app, [.. scopes], [.. tables], time.GetUtcNow()), cancellation);
            await scope.CommitAsync(cancellation);
        }
        catch (Exception e) when (e.InnerException is PostgresException { SqlState: PostgresErrorCodes.UniqueViolation }
                                      || e is PostgresException { SqlState: PostgresErrorCodes.UniqueViolation })
        {
            // Row-level security hides the other user's event; only the unique index says the id is taken.
            return ImportOutcome.Refused(ImportRefusal.EventIdTaken);
        }
        return new ImportOutcome(imported, skipped, ImportRefusal.None);
    }

    /// <summary>
    /// Decides where each event belongs (<see cref="RecordHomes"/>), holding the lock of every shared space
    /// it writes: records shared with others may be written by them meanwhile.
    /// </summary>
    /// <returns>null when a record's place cannot be decided without the caller's spaces.</returns>
    private static async Task<List<ChangeRecorded>?> PlaceAsync(IDocumentSession session, Caller caller, bool spacesKnown,
        List<ChangeRecorded> events, HashSet<string> locks, ChangeUpcasting upcasting, CancellationToken cancellation)
    {
        var keys = RecordHomes.CandidateKeys(events.Select(e => (e.AppId, e.Table, e.RecordId, RecordKey.ScopeOf(e.UserId, e.SpaceId))),
            caller.Scopes);
        var newLocks = events.Select(e => (e.AppId, RecordKey.ScopeOf(e.UserId, e.SpaceId)))
            .Where(named => RecordKey.SpaceOf(named.Item2) is not null)
            .Select(named => WriteLocks.SpaceLockKey(named.AppId, named.Item2))
            .Where(locks.Add)
            .ToList();
        while (true)
        {
            await WriteLocks.TakeAsync(session, newLocks, cancellation);
            await using var read = SessionBatch.For(session, RecordHomes.ReadCommand(keys));
            await using var reader = await read.ExecuteReaderAsync(cancellation);
            var views = (await SessionBatch.ReadDocumentsAsync<RecordView>(reader, session, cancellation)).ToDictionary(view => view.Id);
            var placed = events.Select(e => RecordHomes.Place(e, views, caller.Scopes, spacesKnown, upcasting)).ToList();
            if (placed.Any(p => p.NeedsMemberships)) return null;
            newLocks = placed.SelectMany(p => RecordHomes.SharedScopesWritten([p.Change]).Select(space => WriteLocks.SpaceLockKey(p.Change.AppId, space)))
                .Where(locks.Add)
                .ToList();
            if (newLocks.Count == 0) return placed.Select(p => p.Change).ToList();
        }
    }
}
