using ManaSync.Projections.Records;
using ManaSync.Web.Features.Sync;
using ManaSync.Web.Infrastructure.Isolation;

namespace ManaSync.Web.Features.WritePath;

/// <summary>A shard's part of a write: the places of its changes among the request's, and the scopes the shard holds (null: every scope).</summary>
/// <param name="MovesTo">Scopes of other shards that records written here may move into.</param>
/// <param name="Arriving">Where records moved by another part may arrive in this shard.</param>
public sealed record Route(string Shard, IReadOnlyList<int> Indices, IReadOnlySet<string>? HeldHere, IReadOnlySet<string> MovesTo,
    IReadOnlyList<ArrivalSlot> Arriving);

/// <summary>Which shard each change of a write is stored in.</summary>
public static class ShardRouting
{
    /// <summary>
    /// Where each change is stored, as the places of the changes on each shard, in shard order (main first), with the
    /// scopes that shard holds; all on main unsharded. A change goes where its record lives among the writer's scopes
    /// (an update names no space, and its record may live in one), else where the scope it names lives. It is decided
    /// there; when it names a scope of another shard, it may move the record there (a later placement), so that shard
    /// takes part in the write too, ready to store the move (docs/architecture.md, "Shards").
    /// </summary>
    public static async Task<IReadOnlyList<Route>> RouteAsync(CallerSessions sessions, Caller writer, IReadOnlyList<IncomingChange> changes,
        CancellationToken cancellation)
    {
        if (!sessions.Sharded) return [new Route(sessions.AllShards[0], Enumerable.Range(0, changes.Count).ToList(), null, Empty, [])];
        var homes = await sessions.HomesAsync(writer, writer.Scopes.Concat(changes.Select(NamedScope)), cancellation);
        var targets = changes.Select(change => homes[NamedScope(change)]).ToArray();
        var movesTo = new Dictionary<string, HashSet<string>>();
        var arriving = new Dictionary<string, List<ArrivalSlot>>();
        // Usually every scope of the writer lives in one shard: then so does every record they write.
        if (homes.Values.Distinct().Count() > 1)
        {
            var views = await CurrentViewsAsync(sessions, writer, changes, homes, cancellation);
            for (var i = 0; i < changes.Count; i++)
            {
                var change = changes[i];
                var named = NamedScope(change);
                var found = CandidateScopes(writer, change)
                    .Select(scope => views.GetValueOrDefault(RecordKey.For(scope, change.AppId, change.Table, change.RecordId)))
                    .OfType<RecordView>().Where(view => view.MovedTo is null).ToList();
                var home = found.FirstOrDefault(view => view.Scope == named) ?? found.MaxBy(view => view.Position);
                if (home is null) continue;
                targets[i] = homes[home.Scope];
                if (homes[named] == targets[i]) continue;
                (movesTo.TryGetValue(targets[i], out var scopes) ? scopes : movesTo[targets[i]] = []).Add(named);
                (arriving.TryGetValue(homes[named], out var slots) ? slots : arriving[homes[named]] = []).Add(new ArrivalSlot(change.AppId, change.UserId, named));
            }
        }
        var order = sessions.AllShards.ToList();
        var held = HeldBy(homes);
        var indices = Enumerable.Range(0, changes.Count).ToLookup(index => targets[index]);
        return order.Where(shard => indices.Contains(shard) || arriving.ContainsKey(shard))
            .Select(shard => new Route(shard, indices[shard].ToList(), held[shard],
                movesTo.TryGetValue(shard, out var scopes) ? scopes : Empty,
                arriving.TryGetValue(shard, out var slots) ? slots.Distinct().ToList() : []))
            .ToList();
    }

    private static readonly IReadOnlySet<string> Empty = new HashSet<string>();

    /// <summary>The scopes a change's record may live in: the writer's, and the one the change names.</summary>
    private static IEnumerable<string> CandidateScopes(Caller writer, IncomingChange change) => writer.Scopes.Append(NamedScope(change)).Distinct();

    /// <summary>The views the changes' records have among the writer's scopes, read from each shard holding some of them.</summary>
    private static async Task<Dictionary<string, RecordView>> CurrentViewsAsync(CallerSessions sessions, Caller writer, IReadOnlyList<IncomingChange> changes,
        IReadOnlyDictionary<string, string> homes, CancellationToken cancellation)
    {
        var keys = changes.SelectMany(change => CandidateScopes(writer, change)
                .Select(scope => (Shard: homes[scope], Key: RecordKey.For(scope, change.AppId, change.Table, change.RecordId))))
            .Distinct();
        var views = new Dictionary<string, RecordView>();
        foreach (var shard in keys.GroupBy(key => key.Shard))
        {
            await using var session = await sessions.ReadAsync(writer, cancellation, shard.Key);
            await using var reader = await session.ExecuteAsync([RecordHomes.ReadCommand(shard.Select(key => key.Key).ToArray())], cancellation);
            foreach (var view in await SessionBatch.ReadDocumentsAsync<RecordView>(reader, session.Serializer, cancellation)) views[view.Id] = view;
        }
        return views;
    }

    /// <summary>The scopes each shard holds, of those whose homes are given.</summary>
    public static Dictionary<string, IReadOnlySet<string>> HeldBy(IReadOnlyDictionary<string, string> homes) =>
        homes.GroupBy(home => home.Value).ToDictionary(group => group.Key, group => (IReadOnlySet<string>)group.Select(home => home.Key).ToHashSet());

    public static string NamedScope(IncomingChange change) => RecordKey.ScopeOf(change.UserId, change.Space);
}
