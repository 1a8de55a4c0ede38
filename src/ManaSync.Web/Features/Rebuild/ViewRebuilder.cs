using System.Diagnostics;
using ManaSync.Events.Upcasting;
using ManaSync.Web.Infrastructure;
using ManaSync.Web.Commands;
using ManaSync.Web.Features.Metrics;
using ManaSync.Web.Infrastructure.Sharding;
using Marten;
using Npgsql;

namespace ManaSync.Web.Features.Rebuild;

/// <summary>A rebuild as PROTOCOL §12 reports it: over every shard.</summary>
public sealed record RebuildStatus(string State, long EventsDone, long EventsTotal, long ChangedRecords, bool? DryRun = null, string? Error = null);

/// <summary>
/// Runs a zero-downtime rebuild of the record view (<see cref="ViewBuild"/>) on every shard in turn, one at a time in
/// the whole deployment (a session lock on main, held while it runs, by the command line or by one node), and tells
/// how far it has gone from the progress each shard keeps.
/// </summary>
public sealed class ViewRebuilder(ShardDatabases databases, IDocumentStore store, ChangeUpcasting upcasting, ILogger<ViewRebuilder> logger)
{
    /// <summary>The session lock (one bigint key) a running rebuild holds on main.</summary>
    private const long LockKey = 7881702187703299684;

    /// <summary>Below this many events in a page the new view has caught up with the log.</summary>
    private const int CaughtUp = 500;

    /// <summary>Records touched since their last comparison that the switch compares itself, while it holds pushes back.</summary>
    private const int SwitchWhenTouched = 1000;

    /// <summary>
    /// Views a build holds in memory, and writes with its progress once so many have changed or a minute has passed (what
    /// a killed build merges again). A view is written once per flush it changed in.
    /// </summary>
    public int ViewsPerFlush { get; set; } = DefaultViewsPerFlush;

    public const int DefaultViewsPerFlush = 200_000;

    /// <summary>The latest progress of a rebuild this process runs, for /metrics.</summary>
    public RebuildStatus? Current { get; private set; }

    /// <summary>Starts a rebuild in the background, unless one runs somewhere: then false.</summary>
    public async Task<bool> TryStartAsync(bool dryRun, CancellationToken cancellation)
    {
        var guard = await TryLockAsync(cancellation);
        if (guard is null) return false;
        _ = Task.Run(async () =>
        {
            try
            {
                await RunLockedAsync(guard, dryRun, null, CancellationToken.None);
            }
            catch (Exception e)
            {
                logger.LogError(e, "The record view rebuild failed; starting it again resumes it");
            }
        }, CancellationToken.None);
        return true;
    }

    /// <summary>Runs a rebuild to its end (the command line), reporting progress as it goes.</summary>
    /// <exception cref="InvalidOperationException">One runs already.</exception>
    public async Task<RebuildStatus> RunAsync(bool dryRun, Action<RebuildStatus>? report, CancellationToken cancellation)
    {
        var guard = await TryLockAsync(cancellation) ?? throw new InvalidOperationException("A rebuild of the record view is running already.");
        return await RunLockedAsync(guard, dryRun, report, cancellation);
    }

    /// <summary>
    /// Rebuilds every shard at the lowest CPU priority (its reading and merging), so that requests sharing the cores go
    /// first (docs/benchmarks.md "Rebuild").
    /// </summary>
    private async Task<RebuildStatus> RunLockedAsync(RebuildLock guard, bool dryRun, Action<RebuildStatus>? report,
        CancellationToken cancellation)
    {
        // Two threads: a build reads the next page while it merges one.
        using var background = new BackgroundScheduler("rebuild", threads: 2);
        return await background.RunAsync(() => RebuildShardsAsync(guard, dryRun, report, cancellation));
    }

    private async Task<RebuildStatus> RebuildShardsAsync(RebuildLock guard, bool dryRun, Action<RebuildStatus>? report,
        CancellationToken cancellation)
    {
        await using (guard)
        {
            var done = new List<RebuildProgress>();
            try
            {
                foreach (var (shard, _) in databases.All)
                {
                    // Its own pool, named, so that it can tell its own work from the requests it yields to.
                    await using var database = DataSources.Create(
                        new NpgsqlConnectionStringBuilder(shard.ConnectionString) { ApplicationName = ViewBuild.ApplicationName }.ConnectionString);
                    done.Add(await RebuildAsync(database, dryRun, progress => Report(done.Append(progress), report, running: true), cancellation));
                }
            }
            catch (Exception e)
            {
                await RecordFailureAsync(e, CancellationToken.None);
                Current = await StatusAsync(CancellationToken.None);
                throw;
            }
            return Report(done, report, running: false);
        }
    }

    private RebuildStatus Report(IEnumerable<RebuildProgress> shards, Action<RebuildStatus>? report, bool running)
    {
        var status = Combine(shards.ToList(), running);
        Current = status;
        report?.Invoke(status);
        return status;
    }

    /// <summary>One shard: build, compare while catching up, switch (or, for a dry run, count and discard).</summary>
    private async Task<RebuildProgress> RebuildAsync(NpgsqlDataSource database, bool dryRun, Action<RebuildProgress> report, CancellationToken cancellation)
    {
        // It reads every user's events and views: under row security, as a role that does not bypass it, it would see none.
        if (await AdminCommandLine.RowSecurityBypassRefusalAsync(database, "rebuild") is { } refusal) throw new InvalidOperationException(refusal);
        var build = new ViewBuild(database, store.Options.Serializer(), upcasting, databases.Shards.IsSharded, ViewsPerFlush);
        var progress = await build.OpenAsync(dryRun, cancellation);
        for (var pages = 0; progress.Phase == RebuildPhase.Building; pages++)
        {
            var started = Stopwatch.GetTimestamp();
            var page = await build.BuildPageAsync(progress, cancellation);
            await build.PauseForRequestsAsync(Stopwatch.GetElapsedTime(started), cancellation);
            progress = page.Progress;
            if (pages % 20 == 19) progress = progress with { EventsTotal = progress.EventsDone + await build.EventsAfterAsync(progress.Cursor, cancellation) };
            if (page.Merged < CaughtUp) progress = await build.FlushAsync(progress with { Phase = RebuildPhase.Comparing, EventsTotal = progress.EventsDone }, cancellation);
            report(progress);
        }

        // Both only read the new table: its indexes are built while it is compared, on another connection.
        var comparing = build.CompareAsync(null, cancellation);
        await Task.WhenAll(build.CreateIndexesAsync(cancellation), comparing);
        var changed = await comparing;
        var touched = new HashSet<string>();
        while (true)
        {
            for (var page = new ViewBuild.Page(-1, [], progress); page.Merged != 0;)
            {
                page = await build.BuildPageAsync(page.Progress, cancellation);
                touched.UnionWith(page.Touched);
                progress = page.Progress with { EventsTotal = page.Progress.EventsDone };
            }
            if (touched.Count <= SwitchWhenTouched) break;
            progress = await build.FlushAsync(progress, cancellation);
            changed = await build.CompareAsync(touched, cancellation);
            touched.Clear();
        }
        report(progress = progress with { ChangedRecords = changed });

        if (dryRun)
        {
            progress = await build.FlushAsync(progress, cancellation);
            if (touched.Count > 0) changed = await build.CompareAsync(touched, cancellation);
            await build.DiscardAsync(cancellation);
            progress = await (progress with { Phase = RebuildPhase.Idle, ChangedRecords = changed }).SaveAsync(database, cancellation);
        }
        else
        {
            var reissued = await build.SwitchAsync(progress, touched, cancellation);
            progress = await RebuildProgress.ReadAsync(database, cancellation);
            logger.LogInformation("Rebuilt the record view: {Events} events, {Changed} records changed and reissued; {Timings}",
                progress.EventsDone, reissued, build.Timings);
            if (build.KeptRecords > 0)
            {
                SyncMetrics.KeptAtSwitch(build.KeptRecords);
                logger.LogError("The rebuilt record view lacked {Kept} records the live one held; they were kept as they were. The build missed " +
                                "events: report it, with the server's version", build.KeptRecords);
            }
        }
        report(progress);
        return progress;
    }

    /// <summary>The rebuild over every shard, from the progress each keeps; one left unfinished by a process that stopped is "failed".</summary>
    public async Task<RebuildStatus> StatusAsync(CancellationToken cancellation)
    {
        var shards = new List<RebuildProgress>();
        foreach (var (_, database) in databases.All) shards.Add(await RebuildProgress.ReadAsync(database, cancellation));
        await using var connection = await databases.Main.OpenConnectionAsync(cancellation);
        await using var held = new NpgsqlCommand(
            "select exists (select from pg_locks where locktype = 'advisory' and granted and objsubid = 1 and classid::bigint = $1 and objid::bigint = $2)",
            connection)
        {
            Parameters = { new NpgsqlParameter { Value = (LockKey >> 32) & 0xFFFFFFFF }, new NpgsqlParameter { Value = LockKey & 0xFFFFFFFF } },
        };
        return Combine(shards, running: (bool)(await held.ExecuteScalarAsync(cancellation))!);
    }

    private static RebuildStatus Combine(IReadOnlyList<RebuildProgress> shards, bool running)
    {
        var phases = shards.Select(shard => shard.Phase).ToList();
        var unfinished = phases.Any(phase => phase is RebuildPhase.Building or RebuildPhase.Comparing);
        var state = !running && (unfinished || shards.Any(shard => shard.Error is not null)) ? "failed"
            : phases.Contains(RebuildPhase.Building) ? "running"
            : phases.Contains(RebuildPhase.Comparing) ? "catching-up"
            : running ? "running"
            : phases.Count > 0 && phases.All(phase => phase == RebuildPhase.Switched) ? "switched"
            : "idle";
        var error = shards.Select(shard => shard.Error).FirstOrDefault(error => error is not null) ??
                    (unfinished && !running ? "The rebuild stopped before it ended; start it again to resume it." : null);
        return new RebuildStatus(state, shards.Sum(shard => shard.EventsDone), shards.Sum(shard => shard.EventsTotal),
            shards.Sum(shard => shard.ChangedRecords), shards.Any(shard => shard.DryRun), error);
    }

    private async Task RecordFailureAsync(Exception failure, CancellationToken cancellation)
    {
        foreach (var (_, database) in databases.All)
        {
            try
            {
                await RebuildProgress.CreateAsync(database, cancellation);
                var progress = await RebuildProgress.ReadAsync(database, cancellation);
                if (progress.Phase != RebuildPhase.Switched) await (progress with { Error = failure.Message }).SaveAsync(database, cancellation);
            }
            catch (Exception e) when (e is NpgsqlException or InvalidOperationException)
            {
                logger.LogWarning("Could not record the rebuild's failure: {Reason}", e.Message);
            }
        }
    }

    private async Task<RebuildLock?> TryLockAsync(CancellationToken cancellation)
    {
        var connection = await databases.Main.OpenConnectionAsync(cancellation);
        await using var take = new NpgsqlCommand("select pg_try_advisory_lock($1)", connection) { Parameters = { new NpgsqlParameter { Value = LockKey } } };
        if ((bool)(await take.ExecuteScalarAsync(cancellation))!) return new RebuildLock(connection);
        await connection.DisposeAsync();
        return null;
    }

    /// <summary>The session lock, released explicitly: a pooled connection keeps its session locks until it is next opened.</summary>
    private sealed class RebuildLock(NpgsqlConnection connection) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            try
            {
                await using var release = new NpgsqlCommand("select pg_advisory_unlock($1)", connection) { Parameters = { new NpgsqlParameter { Value = LockKey } } };
                await release.ExecuteScalarAsync();
            }
            catch (NpgsqlException)
            {
                // The connection is broken: PostgreSQL released the lock with its session.
            }
            await connection.DisposeAsync();
        }
    }
}
