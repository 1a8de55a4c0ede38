using System.Data;
using ManaSync.Events;
using ManaSync.Events.Upcasting;
using ManaSync.Projections.Records;
using ManaSync.Web.Features.Sync;
using ManaSync.Web.Features.WritePath;
using ManaSync.Web.Infrastructure;
using ManaSync.Web.Infrastructure.Isolation;
using ManaSync.Web.Infrastructure.Sharding;
using Marten;
using SessionOptions = Marten.Services.SessionOptions;
using Npgsql;

namespace ManaSync.Web.Features.Sharding;

/// <param name="Events">The scope's events now in the target shard.</param>
/// <param name="Views">The scope's record views now in the target shard.</param>
/// <param name="Removed">Events removed from the source shard (those of the scope alone).</param>
public sealed record MoveReport(string Scope, string From, string To, long Events, long Views, long Removed);

/// <summary>
/// Moves a scope's events and record views from its shard to another while the server keeps serving
/// (<c>shards move</c>, docs/deployment.md "Moving a scope"):
/// <list type="number">
/// <item>copy: the scope's events are appended to the target under their own eventIds, and its views built there from them,
/// in the source's order, with the positions they had there (positions travel in the events), so cursors issued before stay
/// valid; passes repeat while pushes go on. An event the target has already (it moved a record between the scope and one
/// of the target's, so both shards store it) is not appended again, but merged into the scope's views all the same;</item>
/// <item>fence: on the source, wait for every write into the scope to end and bar later ones (<see cref="ScopeFences"/>);
/// copy what those writes stored; raise the target's stamps above the source's last, so every write the target takes
/// for the scope lies after every cursor a reader got from the source;</item>
/// <item>switch the shard map; nodes still sending the scope to the source find the fence and follow (a 503 to retry
/// for writers, a fresh map for readers);</item>
/// <item>after a grace period longer than any read, remove the scope's views from the source, and its events there
/// except those another scope of the source still needs (a record moved between the two).</item>
/// </list>
/// Each step can be repeated: a move killed halfway is finished by running it again.
/// </summary>
public sealed class ScopeMove(IDocumentStore store, ShardDatabases databases, ChangeUpcasting upcasting)
{
    private const int PageSize = 1000;

    private readonly RecordViewUpsert _upsert = new(MartenSetup.Schema);

    /// <summary>The scope's events that the target's views of it have taken in, during this run.</summary>
    private readonly HashSet<Guid> _merged = [];

    public async Task<MoveReport> RunAsync(string scope, string target, TimeSpan grace, TextWriter progress, CancellationToken cancellation)
    {
        if (!databases.Shards.Contains(target)) throw new ArgumentException($"No shard is named '{target}'.");
        var main = databases.Main;
        // One move of a scope at a time: a session lock on main, held while this runs.
        await using var guard = await main.OpenConnectionAsync(cancellation);
        await using (var take = new NpgsqlCommand("select pg_try_advisory_lock(hashtextextended('move:' || $1, 0))", guard))
        {
            take.Parameters.Add(new NpgsqlParameter { Value = scope });
            if (!(bool)(await take.ExecuteScalarAsync(cancellation))!) throw new InvalidOperationException($"{scope} is being moved already.");
        }

        var source = await ShardMap.FindAsync(main, scope, cancellation);
        if (source is null)
        {
            await SwitchAsync(scope, target, cancellation);
            return new MoveReport(scope, target, target, 0, 0, 0);
        }
        if (source == target) return new MoveReport(scope, source, target, 0, await CountViewsAsync(databases[target], scope, cancellation), 0);

        await ScopeFences.LiftAsync(databases[target], scope, cancellation);
        // Views of the scope the target has from earlier (left by a move, or by a record that moved away from it) are rebuilt.
        await DeleteViewsAsync(databases[target], scope, cancellation);
        long copied;
        var pass = 0;
        do
        {
            copied = await CopyAsync(scope, source, target, cancellation);
            await progress.WriteLineAsync($"copy pass {++pass}: {copied} events of {scope} from {source} to {target}");
        } while (copied > 0 && pass < 10);

        await ScopeFences.FenceAsync(databases[source], scope, target, async () =>
        {
            var last = await CopyAsync(scope, source, target, cancellation);
            await progress.WriteLineAsync($"fenced {scope} in {source}; last copy: {last} events");
            await RaiseStampsAsync(source, target, cancellation);
        }, cancellation);
        var ids = await EventIdsAsync(scope, source, cancellation);
        var present = await PresentAsync(databases[target], ids, cancellation);
        if (present.Count != ids.Count)
            throw new InvalidOperationException($"{ids.Count - present.Count} events of {scope} are missing from {target}; the map was not switched: run the move again.");
        await SwitchAsync(scope, target, cancellation);
        await progress.WriteLineAsync($"{scope} now lives in {target}; removing it from {source} in {grace.TotalSeconds:0} s");

        await Task.Delay(grace, cancellation);
        var removed = await RemoveAsync(scope, source, cancellation);
        return new MoveReport(scope, source, target, ids.Count, await CountViewsAsync(databases[target], scope, cancellation), removed);
    }

    /// <summary>
    /// Appends to the target the scope's events it lacks and merges into its views there those it has not yet taken in, in the
    /// source's order, page by page, each page in one transaction. Returns how many events it appended.
    /// </summary>
    private async Task<long> CopyAsync(string scope, string source, string target, CancellationToken cancellation)
    {
        long copied = 0, after = 0;
        while (true)
        {
            var page = await ReadPageAsync(databases[source], scope, after, cancellation);
            if (page.Count == 0) return copied;
            after = page[^1].Sequence;
            var fresh = page.Where(row => !_merged.Contains(row.Change.EventId)).ToList();
            if (fresh.Count == 0) continue;
            var present = await PresentAsync(databases[target], fresh.Select(row => row.Change.EventId).ToList(), cancellation);
            var missing = fresh.Where(row => !present.Contains(row.Change.EventId)).ToList();
            // Under the locks of the streams appended to, which pushes into them (of the scope's other records) take too.
            var (connection, transaction) = await CallerSessions.BeginAsync(databases[target], IsolationLevel.ReadCommitted, cancellation);
            await using (connection)
            {
                await using (var locks = new NpgsqlBatch(connection, transaction)
                             {
                                 BatchCommands = { WriteLocks.Command(missing.Select(row => WriteLocks.StreamLockKey(row.Stream)).Distinct()) },
                             })
                    await locks.ExecuteNonQueryAsync(cancellation);
                var options = SessionOptions.ForTransaction(transaction, shouldAutoCommit: false);
                options.TenantId = target;
                await using var session = store.LightweightSession(options);
                // The scope's views merged with every event in the source's order: events the target has already (stored there
                // for a scope of its own, which they touch too) are merged into the scope's views here as well as those appended.
                var changes = fresh.Select(row => upcasting.ToCurrent(row.Change)).ToList();
                var keys = changes.Select(change => RecordKey.For(scope, change.AppId, change.Table, change.RecordId)).ToList();
                var views = (await session.LoadManyAsync<RecordView>(cancellation, keys.Distinct())).ToDictionary(view => view.Id);
                for (var i = 0; i < changes.Count; i++) RecordViews.Apply(views, changes[i], only: keys[i]);
                foreach (var stream in missing.GroupBy(row => row.Stream)) EventLog.Append(session, stream.Key, stream.Select(row => row.Change));
                await session.SaveChangesAsync(cancellation);
                // The projection merged the appended events into the scope's views as it found them; these replace its.
                _upsert.Queue(session, views.Values);
                await session.SaveChangesAsync(cancellation);
                await transaction.CommitAsync(cancellation);
            }
            _merged.UnionWith(fresh.Select(row => row.Change.EventId));
            copied += missing.Count;
        }
    }

    private sealed record Row(long Sequence, string Stream, ChangeRecorded Change);

    /// <summary>
    /// A page of the scope's events in a shard: those merged into its records, or moving records out of it. Found by
    /// the streams of its user (a user's scope) or by the space the changes name (a space's), then checked one by one.
    /// </summary>
    private async Task<List<Row>> ReadPageAsync(NpgsqlDataSource shard, string scope, long after, CancellationToken cancellation)
    {
        var space = RecordKey.SpaceOf(scope);
        var rows = new List<Row>();
        while (true)
        {
            await using var command = shard.CreateCommand(
                $"select seq_id, stream_id, data from {MartenSetup.Schema}.mt_events " +
                (space is null
                    ? $"where ({MartenSetup.Schema}.stream_owner(stream_id) = $1 " 
                    : "where (data ->> 'spaceId' = $1 ") +
                "or data ->> 'recordScope' = $2 or data ->> 'movedFrom' = $2) and seq_id > $3 order by seq_id limit " + PageSize);
            command.Parameters.Add(new NpgsqlParameter { Value = space ?? scope[2..] });
            command.Parameters.Add(new NpgsqlParameter { Value = scope });
            command.Parameters.Add(new NpgsqlParameter { Value = after });
            var read = 0;
            await using (var reader = await command.ExecuteReaderAsync(cancellation))
            {
                while (await reader.ReadAsync(cancellation))
                {
                    read++;
                    after = reader.GetInt64(0);
                    var change = store.Options.Serializer().FromJson<ChangeRecorded>(reader, 2);
                    if (RecordKey.ScopesOf(change).Contains(scope)) rows.Add(new Row(after, reader.GetString(1), change));
                }
            }
            if (rows.Count > 0 || read < PageSize) return rows;
        }
    }

    private async Task<List<Guid>> EventIdsAsync(string scope, string shard, CancellationToken cancellation)
    {
        var ids = new List<Guid>();
        for (var page = await ReadPageAsync(databases[shard], scope, 0, cancellation);
             page.Count > 0;
             page = await ReadPageAsync(databases[shard], scope, page[^1].Sequence, cancellation))
            ids.AddRange(page.Select(row => row.Change.EventId));
        return ids;
    }

    private static async Task<HashSet<Guid>> PresentAsync(NpgsqlDataSource shard, IReadOnlyList<Guid> ids, CancellationToken cancellation)
    {
        var present = new HashSet<Guid>();
        foreach (var chunk in ids.Chunk(10_000))
        {
            await using var command = shard.CreateCommand($"select id from {MartenSetup.Schema}.mt_events where id = any($1)");
            command.Parameters.Add(new NpgsqlParameter { Value = chunk });
            await using var reader = await command.ExecuteReaderAsync(cancellation);
            while (await reader.ReadAsync(cancellation)) present.Add(reader.GetGuid(0));
        }
        return present;
    }

    /// <summary>Every stamp the target takes from now on lies above the source's last one.</summary>
    private async Task RaiseStampsAsync(string source, string target, CancellationToken cancellation)
    {
        await using var last = databases[source].CreateCommand(FeedStamps.LastSql);
        var floor = (long)(await last.ExecuteScalarAsync(cancellation))! + 1;
        await using var raise = databases[target].CreateCommand(FeedStamps.RaiseSql);
        raise.Parameters.Add(new NpgsqlParameter { Value = floor });
        await raise.ExecuteNonQueryAsync(cancellation);
    }

    private Task SwitchAsync(string scope, string target, CancellationToken cancellation) =>
        ShardMap.AssignAsync(databases.Main, scope, target, cancellation);

    /// <summary>
    /// Removes the scope from the shard it left: its views, and its events but those that also belong to a scope still
    /// living there (they moved a record between the two, and the other scope's views are built from them too).
    /// </summary>
    private async Task<long> RemoveAsync(string scope, string source, CancellationToken cancellation)
    {
        var shard = databases[source];
        var homes = new Dictionary<string, string?>();
        var removable = new List<Guid>();
        for (var page = await ReadPageAsync(shard, scope, 0, cancellation); page.Count > 0;
             page = await ReadPageAsync(shard, scope, page[^1].Sequence, cancellation))
        {
            foreach (var row in page)
            {
                var other = RecordKey.Scope(row.Change) == scope ? row.Change.MovedFrom : RecordKey.Scope(row.Change);
                if (other is not null && other != scope)
                {
                    if (!homes.TryGetValue(other, out var home)) homes[other] = home = await ShardMap.FindAsync(databases.Main, other, cancellation);
                    if (home == source) continue;
                }
                removable.Add(row.Change.EventId);
            }
        }
        long removed = 0;
        foreach (var chunk in removable.Chunk(10_000))
        {
            await using var events = shard.CreateCommand($"delete from {MartenSetup.Schema}.mt_events where id = any($1)");
            events.Parameters.Add(new NpgsqlParameter { Value = chunk });
            removed += await events.ExecuteNonQueryAsync(cancellation);
        }
        await DeleteViewsAsync(shard, scope, cancellation);
        return removed;
    }

    private static async Task DeleteViewsAsync(NpgsqlDataSource shard, string scope, CancellationToken cancellation)
    {
        await using var views = shard.CreateCommand($"delete from {MartenSetup.Schema}.mt_doc_recordview where scope = $1");
        views.Parameters.Add(new NpgsqlParameter { Value = scope });
        await views.ExecuteNonQueryAsync(cancellation);
    }

    private static async Task<long> CountViewsAsync(NpgsqlDataSource shard, string scope, CancellationToken cancellation)
    {
        await using var command = shard.CreateCommand($"select count(*) from {MartenSetup.Schema}.mt_doc_recordview where scope = $1");
        command.Parameters.Add(new NpgsqlParameter { Value = scope });
        return (long)(await command.ExecuteScalarAsync(cancellation))!;
    }
}
