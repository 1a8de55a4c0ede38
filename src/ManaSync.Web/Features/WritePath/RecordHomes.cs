using ManaSync.Events;
using ManaSync.Events.Upcasting;
using ManaSync.Projections.Records;
using ManaSync.Web.Features.Sync;
using ManaSync.Web.Infrastructure;
using Npgsql;

namespace ManaSync.Web.Features.WritePath;

/// <summary>The scope a change was stored into, and whether that took knowing the writer's spaces.</summary>
/// <param name="NeedsMemberships">The record has left the scope the change names for one the writer may see, but the
/// writer's spaces are unknown: storing the change there could hide it where nobody looks.</param>
public sealed record PlacedChange(ChangeRecorded Change, bool NeedsMemberships = false);

/// <summary>
/// Where a change belongs. A record is one record per (app, table, id) among the scopes its writer can
/// see (their own and their spaces'), wherever its spaceId says it lives; deployed clients rewrite
/// "_personal:&lt;user&gt;" to the real personal space at login, and later changes carry the new spaceId.
/// </summary>
/// <remarks>
/// A change naming another scope than the record's moves the record when its placement is later than the
/// one that put the record where it is (<see cref="Placement"/>): the event carries the record's state
/// along, the view it left marks where it went (readers who cannot see the new scope get a delete), and
/// the view it enters takes the state (readers who gain it get all of it). An older placement does not
/// move the record: its change is merged where the record is. Every writer of the scopes involved holds
/// their locks (<see cref="WriteLocks"/>), so a move sees the state it carries.
/// </remarks>
public static class RecordHomes
{
    /// <summary>The views a batch may touch: each record in every scope its writer can see, and in the scope its change names.</summary>
    public static string[] CandidateKeys(IEnumerable<(string AppId, string Table, string RecordId, string NamedScope)> records,
        IReadOnlyList<string> writerScopes) =>
        records.SelectMany(record => writerScopes.Append(record.NamedScope)
                .Select(scope => RecordKey.For(scope, record.AppId, record.Table, record.RecordId)))
            .Distinct()
            .ToArray();

    /// <summary>Reads the views under these keys, as part of a larger batch.</summary>
    public static NpgsqlBatchCommand ReadCommand(string[] keys) =>
        SessionBatch.Command($"select data from {MartenSetup.Schema}.mt_doc_recordview where id = any($1)", keys);

    /// <summary>
    /// Decides the scope of a change given the views read (and changed by earlier changes of the batch), and
    /// applies it to them as the projection will.
    /// </summary>
    /// <param name="heldHere">With shards, the scopes the shard being written holds. Null: every scope.</param>
    /// <param name="movesTo">With shards, the scopes of other shards that the write stores into as well: a record may move into
    /// them (the move is stored in both shards). Into a scope of any other shard it is not moved (it would land where nobody
    /// reads it); its change is merged where the record is.</param>
    public static PlacedChange Place(ChangeRecorded change, IDictionary<string, RecordView> views, IReadOnlyList<string> writerScopes,
        bool spacesKnown, ChangeUpcasting upcasting, IReadOnlySet<string>? heldHere = null, IReadOnlySet<string>? movesTo = null)
    {
        var named = Named(change);
        // The record where the change names it, else the latest one elsewhere; and whether it left a scope.
        var (namedHome, otherHome, left) = ((RecordView?)null, (RecordView?)null, false);
        foreach (var scope in writerScopes.Contains(named) ? writerScopes : [.. writerScopes, named])
        {
            if (!views.TryGetValue(RecordKey.For(scope, change.AppId, change.Table, change.RecordId), out var view)) continue;
            if (view.MovedTo is not null) left = true;
            else if (view.Scope == named) namedHome = view;
            else if (otherHome is null || view.Position > otherHome.Position) otherHome = view;
        }
        var home = namedHome ?? otherHome;
        if (home is null && !spacesKnown && left) return new PlacedChange(change, NeedsMemberships: true);

        var placed = change with { RecordScope = named };
        if (home is not null && home.Scope != named)
            placed = (heldHere is null || heldHere.Contains(named) || movesTo?.Contains(named) == true) && Placement.Supersedes(Placement.Of(upcasting.ToCurrent(change)), home.PlacedBy)
                ? placed with { MovedFrom = home.Scope, MovedState = RecordViewJson.WriteState(home) }
                : placed with { RecordScope = home.Scope };
        RecordViews.Apply(views, upcasting.ToCurrent(placed));
        return new PlacedChange(placed);
    }

    private static string Named(ChangeRecorded change) => RecordKey.ScopeOf(change.UserId, change.SpaceId);

    /// <summary>The locks of the shared spaces these placed changes write into or move records out of.</summary>
    public static IEnumerable<string> SpaceLocksWritten(IEnumerable<ChangeRecorded> changes) =>
        changes.SelectMany(change => new[] { change.RecordScope, change.MovedFrom }
                .Where(scope => scope is not null && RecordKey.SpaceOf(scope) is not null)
                .Select(space => WriteLocks.SpaceLockKey(change.AppId, space!)))
            .Distinct();
}
