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

                if (await RecordHomes.PlaceAsync(session, fresh, _ => caller.Scopes, spacesKnown, locks, upcasting, cancellation) is not { } placed)
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
}
