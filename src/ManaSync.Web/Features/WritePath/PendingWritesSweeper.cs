using ManaSync.Events.Upcasting;
using ManaSync.Web.Configuration;
using ManaSync.Web.Infrastructure;
using ManaSync.Web.Infrastructure.Isolation;
using ManaSync.Web.Infrastructure.Sharding;

namespace ManaSync.Web.Features.WritePath;

/// <summary>
/// With shards: every few seconds stores the parts of writes across shards that a stopped node left behind
/// (<see cref="PendingWrites"/>), where their scopes live now.
/// </summary>
public sealed class PendingWritesSweeper(ShardDatabases databases, CallerSessions sessions, ChangeUpcasting upcasting, ServerSettings settings,
    TimeProvider time, ILogger<PendingWritesSweeper> logger) : BackgroundService
{
    private static readonly TimeSpan Interval = TimeSpan.FromSeconds(10);

    public override async Task StartAsync(CancellationToken cancellationToken)
    {
        if (databases.Shards.IsSharded) await base.StartAsync(cancellationToken);
    }

    protected override async Task ExecuteAsync(CancellationToken stopping)
    {
        while (!stopping.IsCancellationRequested)
        {
            foreach (var (shard, database) in databases.All)
            {
                try
                {
                    while (await PendingWrites.SweepOneAsync(database, StoreAsync, logger, stopping)) { }
                }
                catch (Exception e) when (DatabaseUnavailable.Is(e) && !stopping.IsCancellationRequested)
                {
                    logger.LogWarning("Could not sweep pending writes recorded in shard {Shard} ({Reason}); trying again later", shard.Name, e.Message);
                }
            }
            await Task.Delay(Interval, time, stopping).ContinueWith(_ => { }, CancellationToken.None);
        }
    }

    private async Task<WriteOutcome> StoreAsync(PendingWrite part, CancellationToken cancellation)
    {
        WriteRequest On(string shard) =>
            new(cancel => sessions.WriteAsync(part.Writer, cancel, shard), _ => part.Writer, upcasting, settings.MaxClockSkew, time);

        if (part.Arrivals is { Count: > 0 } arrivals) await ShardedWrite.StoreArrivalsAsync(sessions, part.Writer, arrivals, On, cancellation);
        return part.Changes.Count > 0
            ? await ShardedWrite.StoreBatchAsync(sessions, databases, part.Writer, part.Changes, On, cancellation)
            : new WriteOutcome(0, 0, [], null);
    }
}
