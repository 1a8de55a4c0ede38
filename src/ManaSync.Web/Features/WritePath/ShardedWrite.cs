using ManaSync.Events;
using ManaSync.Projections.Records;
using ManaSync.Web.Infrastructure;
using ManaSync.Web.Infrastructure.Isolation;
using ManaSync.Web.Infrastructure.Sharding;
using Marten;

namespace ManaSync.Web.Features.WritePath;

/// <summary>One shard's share of a write: its changes (in chunks, as <see cref="ChangeWriter"/> takes them), and where
/// each stood among the request's changes, so a refusal names the change the client sent.</summary>
public sealed record ShardPart(string Shard, Func<IAsyncEnumerable<IReadOnlyList<IncomingChange>>> Chunks, IReadOnlyList<int> Indices);

/// <summary>
/// Stores a write whose changes live on several shards all or nothing, as far as PostgreSQL lets one shard's
/// transaction wait for another's: each shard's part is stored in its own transaction through <see cref="ChangeWriter"/>,
/// in shard order (so two writes cannot wait on each other's locks across shards), every transaction waits before
/// committing until all have stored their part, and then they commit in that order. A part refused, or failing,
/// rolls every part back. What a commit cannot make atomic — the first shard committed, a later one not, because
/// the node died in between — the first transaction covers: it records the later parts (<see cref="PendingWrites"/>)
/// and a sweeper on any node stores them, idempotently by the eventIds they were given first. docs/architecture.md,
/// "Shards", has the argument.
/// </summary>
public static class ShardedWrite
{
    /// <summary>
    /// Stores a batch of one writer's changes, each in the shard of its scope: one transaction when they all live on
    /// one shard (always, unsharded); across shards, every part all or nothing, the later parts recorded as pending
    /// in the first shard's transaction and forgotten once they have committed.
    /// </summary>
    public static async Task<WriteOutcome> StoreBatchAsync(CallerSessions sessions, ShardDatabases databases, Caller writer,
        IReadOnlyList<IncomingChange> changes, Func<string, WriteRequest> requestOn, CancellationToken cancellation)
    {
        try
        {
            return await StoreRoutedAsync(sessions, databases, writer, changes, requestOn, cancellation);
        }
        catch (Exception e) when (ScopeFences.IsMoved(e))
        {
            // A scope has left the shard this node sent it to: forget where, and let the client's retry go where it is now.
            sessions.Forget(changes.Select(ShardRouting.NamedScope));
            throw;
        }
    }

    /// <summary>
    /// Stores changes too many to hold at once (an archive), each in the shard of its record's scope: a first pass finds
    /// the shards (an update naming no space belongs with its record's earlier changes), then each shard's part streams its
    /// changes from the source again. No part is recorded as pending: such changes carry their eventIds from the start, so
    /// the client's retry of a write that failed between commits completes it.
    /// </summary>
    /// <param name="chunks">The changes, in storing order; enumerated once per shard, and again on a retry.</param>
    public static async Task<WriteOutcome> StoreChunksAsync(CallerSessions sessions, Caller writer,
        Func<IAsyncEnumerable<IReadOnlyList<IncomingChange>>> chunks, Func<string, WriteRequest> requestOn, CancellationToken cancellation)
    {
        if (sessions.AllShards.Count == 1) return await ChangeWriter.StoreAsync(requestOn(sessions.AllShards[0]), chunks, cancellation);

        var scopes = new List<string>();
        var recordScopes = new Dictionary<(string, string, string), string>();
        await foreach (var chunk in chunks().WithCancellation(cancellation))
            foreach (var change in chunk)
            {
                var record = (change.AppId, change.Table, change.RecordId);
                var named = ShardRouting.NamedScope(change);
                var scope = RecordKey.SpaceOf(named) is null && recordScopes.TryGetValue(record, out var earlier) ? earlier : named;
                recordScopes[record] = scope;
                scopes.Add(scope);
            }
        var homes = await sessions.HomesAsync(writer, scopes, cancellation);
        var written = scopes.Select(scope => homes[scope]).ToHashSet();
        var parts = sessions.AllShards.Where(written.Contains).Select(shard =>
        {
            var indices = new List<int>();
            async IAsyncEnumerable<IReadOnlyList<IncomingChange>> PartOf()
            {
                indices.Clear();
                var index = 0;
                await foreach (var chunk in chunks().WithCancellation(cancellation))
                {
                    var mine = new List<IncomingChange>();
                    foreach (var change in chunk)
                    {
                        if (homes[scopes[index]] == shard)
                        {
                            mine.Add(change);
                            indices.Add(index);
                        }
                        index++;
                    }
                    if (mine.Count > 0) yield return mine;
                }
            }
            return new ShardPart(shard, PartOf, indices);
        }).ToList();
        var held = ShardRouting.HeldBy(homes);
        return await StoreAsync(parts, shard => requestOn(shard) with { HeldHere = held[shard] }, homes, recordPending: null, cancellation);
    }


    /// <summary>
    /// Stores events decided in another shard's part of a write that a stopped node left behind (records moved into a scope
    /// of this shard, or out of it), as they are, in the shards their scopes live in now; those already there are skipped.
    /// </summary>
    public static async Task StoreArrivalsAsync(CallerSessions sessions, Caller writer, IReadOnlyList<ChangeRecorded> arrivals,
        Func<string, WriteRequest> requestOn, CancellationToken cancellation)
    {
        var homes = await sessions.HomesAsync(writer, arrivals.SelectMany(RecordKey.ScopesOf), cancellation);
        foreach (var shard in arrivals.SelectMany(RecordKey.ScopesOf).Select(scope => homes[scope]).Distinct())
        {
            var here = arrivals.Where(e => RecordKey.ScopesOf(e).Any(scope => homes[scope] == shard)).ToList();
            await ChangeWriter.StoreAsync(requestOn(shard) with
            {
                Arriving = here.Select(ArrivalSlot.Of).Distinct().ToList(),
                Exchange = (_, _) => Task.FromResult<IReadOnlyList<ChangeRecorded>>(here),
            }, [], cancellation);
        }
    }

    private static async Task<WriteOutcome> StoreRoutedAsync(CallerSessions sessions, ShardDatabases databases, Caller writer,
        IReadOnlyList<IncomingChange> changes, Func<string, WriteRequest> requestOn, CancellationToken cancellation)
    {
        var routes = await ShardRouting.RouteAsync(sessions, writer, changes, cancellation);
        if (routes.Count == 1)
            return await ChangeWriter.StoreAsync(requestOn(routes[0].Shard) with { HeldHere = routes[0].HeldHere }, changes, cancellation);

        changes = PendingWrites.WithEventIds(changes);
        var parts = routes.Select(route =>
        {
            IReadOnlyList<IncomingChange> mine = route.Indices.Select(i => changes[i]).ToList();
            return new ShardPart(route.Shard, () => new[] { mine }.ToAsyncEnumerable(), route.Indices);
        }).ToList();
        var byShard = routes.ToDictionary(route => route.Shard);
        var shardOf = routes.SelectMany(route => route.HeldHere!.Select(scope => (Scope: scope, route.Shard))).ToDictionary(held => held.Scope, held => held.Shard);
        string? firstShard = null;
        var pending = new List<PendingWrite>();
        var outcome = await StoreAsync(parts,
            shard => requestOn(shard) with { HeldHere = byShard[shard].HeldHere, MovesTo = byShard[shard].MovesTo, Arriving = byShard[shard].Arriving },
            shardOf,
            async (scope, first, arrivals, cancel) =>
            {
                firstShard = first;
                pending.AddRange(routes.Where(route => route.Shard != first)
                    .Select(route => new PendingWrite(Guid.CreateVersion7(), route.Shard, writer, route.Indices.Select(i => changes[i]).ToList(),
                        arrivals.GetValueOrDefault(route.Shard) ?? []))
                    .Where(part => part.Changes.Count > 0 || part.Arrivals is { Count: > 0 }));
                await PendingWrites.RecordAsync(scope, pending, cancel);
            },
            cancellation);
        if (outcome.Refusal is null && firstShard is not null && pending.Count > 0)
        {
            try
            {
                await PendingWrites.ForgetAsync(databases[firstShard], pending.Select(part => part.Id), cancellation);
            }
            catch (Exception e) when (DatabaseUnavailable.Is(e))
            {
                // Every part has committed: the write stands, and a sweeper removes the record when it finds it stored.
            }
        }
        return outcome;
    }

    /// <summary>Records, in the transaction that commits first, the other parts of a write (their changes and the events that arrive in them).</summary>
    public delegate Task RecordPending(CallerSession<IDocumentSession> scope, string firstShard,
        IReadOnlyDictionary<string, IReadOnlyList<ChangeRecorded>> arrivals, CancellationToken cancellation);

    /// <param name="requestOn">The write request on a shard, without a BeforeCommit or Exchange of its own.</param>
    /// <param name="shardOf">The shard of each scope the write may store into.</param>
    /// <param name="recordPending">In the transaction that commits first, once every part is stored: records the others.</param>
    public static async Task<WriteOutcome> StoreAsync(IReadOnlyList<ShardPart> parts, Func<string, WriteRequest> requestOn,
        IReadOnlyDictionary<string, string> shardOf, RecordPending? recordPending, CancellationToken cancellation)
    {
        if (parts.Count == 1) return await ChangeWriter.StoreAsync(requestOn(parts[0].Shard), parts[0].Chunks, cancellation);

        var chain = new Chain(parts, requestOn, shardOf, recordPending, cancellation);
        WriteOutcome? first;
        try
        {
            first = await chain.RunAsync(0);
        }
        finally
        {
            // Later parts end on their own once the first has; none is left holding its transaction.
            await Task.WhenAll(chain.Started.OfType<Task<WriteOutcome?>>()).ContinueWith(_ => { }, CancellationToken.None);
        }
        var outcomes = chain.Started.Select(part => part is { IsCompletedSuccessfully: true } ? part.Result : null).Prepend(first).ToList();
        if (chain.Started.FirstOrDefault(part => part is { IsFaulted: true }) is { } failed) await failed;
        for (var i = 0; i < outcomes.Count; i++)
            if (outcomes[i]?.Refusal is { } refusal)
                return WriteOutcome.Refused(refusal.Renumbered(index => parts[i].Indices[index]));
        if (outcomes.Any(outcome => outcome is null)) throw new InvalidOperationException("A shard's part was abandoned though none was refused.");
        return new WriteOutcome(outcomes.Sum(o => o!.Stored), outcomes.Sum(o => o!.Skipped), outcomes.SelectMany(o => o!.Conflicts).ToList(), null);
    }

    /// <summary>Thrown into a part's transaction, before it commits, when another part will not commit.</summary>
    private sealed class SiblingAbandoned() : Exception("Another shard's part of this write did not store; this part rolls back.");

    /// <summary>
    /// The parts' transactions, started one after another in shard order (so their locks are taken in that order).
    /// Each, once it has stored its changes, starts the next and waits until that has stored its own (and so every later
    /// one has); then it stores the events other parts decided that arrive in its shard (records moved here), and tells
    /// the part before it that it has stored. Once the first part has stored too, they commit: first the one part that
    /// moved records to other shards, if there is exactly one (so a move is never lost half way: the moves it decided
    /// are recorded as pending arrivals in it), else the first; then the others in order.
    /// </summary>
    private sealed class Chain(IReadOnlyList<ShardPart> parts, Func<string, WriteRequest> requestOn, IReadOnlyDictionary<string, string> shardOf,
        RecordPending? recordPending, CancellationToken cancellation)
    {
        private readonly TaskCompletionSource[] _stored = parts.Select(_ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).ToArray();
        private readonly TaskCompletionSource<bool>[] _committed =
            parts.Select(_ => new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously)).ToArray();
        private readonly IReadOnlyList<ChangeRecorded>[] _leaving = parts.Select(_ => (IReadOnlyList<ChangeRecorded>)[]).ToArray();
        private readonly TaskCompletionSource<int> _firstToCommit = new(TaskCreationOptions.RunContinuationsAsynchronously);

        /// <summary>The parts after the first (part i + 1 at i), once started; a part refused before it stored starts none.</summary>
        public Task<WriteOutcome?>?[] Started { get; } = new Task<WriteOutcome?>?[parts.Count - 1];

        /// <returns>The part's outcome; null when it rolled back because another part did not store.</returns>
        public async Task<WriteOutcome?> RunAsync(int i)
        {
            try
            {
                var outcome = await ChangeWriter.StoreAsync(requestOn(parts[i].Shard) with
                {
                    Exchange = (leaving, _) => ExchangeAsync(i, leaving),
                    BeforeCommit = (scope, _) => BeforeCommitAsync(i, scope),
                }, parts[i].Chunks, cancellation);
                _committed[i].TrySetResult(outcome.Refusal is null);
                return outcome;
            }
            catch (SiblingAbandoned)
            {
                _committed[i].TrySetResult(false);
                return null;
            }
            catch
            {
                _committed[i].TrySetResult(false);
                throw;
            }
            finally
            {
                // The first part ended without choosing an order (it did not store): the others learn it from its outcome.
                if (i == 0) _firstToCommit.TrySetResult(0);
            }
        }

        /// <summary>Part i has decided and stored its changes: it lets every later part do so, then takes what arrives from all.</summary>
        private async Task<IReadOnlyList<ChangeRecorded>> ExchangeAsync(int i, IReadOnlyList<ChangeRecorded> leaving)
        {
            _leaving[i] = leaving;
            if (i < parts.Count - 1)
            {
                var next = Started[i] = Task.Run(() => RunAsync(i + 1), CancellationToken.None);
                if (await Task.WhenAny(_stored[i + 1].Task, next) != _stored[i + 1].Task) throw new SiblingAbandoned();
            }
            return ArrivalsIn(parts[i].Shard);
        }

        /// <summary>The events other parts decided that live in this shard: records moved into its scopes, or out of them.</summary>
        private List<ChangeRecorded> ArrivalsIn(string shard) =>
            Enumerable.Range(0, parts.Count).Where(j => parts[j].Shard != shard)
                .SelectMany(j => _leaving[j])
                .Where(e => RecordKey.ScopesOf(e).Any(scope => ShardOf(scope) == shard))
                .ToList();

        private string ShardOf(string scope) => shardOf.TryGetValue(scope, out var shard)
            ? shard
            : throw new InvalidOperationException($"A record was moved into {scope}, whose shard takes no part in the write.");

        private async Task BeforeCommitAsync(int i, CallerSession<IDocumentSession> scope)
        {
            if (i > 0) _stored[i].TrySetResult();
            else
            {
                var movers = Enumerable.Range(0, parts.Count).Where(j => _leaving[j].Count > 0).ToList();
                _firstToCommit.TrySetResult(movers.Count == 1 ? movers[0] : 0);
            }
            var first = await _firstToCommit.Task;
            if (i == first)
            {
                if (recordPending is not null)
                    await recordPending(scope, parts[first].Shard,
                        parts.Where(part => part.Shard != parts[first].Shard).ToDictionary(part => part.Shard, part => (IReadOnlyList<ChangeRecorded>)ArrivalsIn(part.Shard)),
                        cancellation);
                return;
            }
            var order = Enumerable.Range(0, parts.Count).Where(j => j != first).Prepend(first).ToList();
            if (!await _committed[order[order.IndexOf(i) - 1]].Task) throw new SiblingAbandoned();
        }
    }
}
