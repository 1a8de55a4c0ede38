using System.Diagnostics;
using ManaSync.Web.Infrastructure.Sharding;
using ManaSync.Web.Infrastructure.Tracing;
using Npgsql;
using Wolverine;
using Wolverine.Runtime;

namespace ManaSync.Web.Features.Live;

/// <summary>
/// Listens for commits of every node (LISTEN on one dedicated connection per shard: a NOTIFY reaches the listeners of
/// its own database) and hands them to this node's <see cref="ChangesCommittedHandler"/> through Wolverine's local
/// queue. After a lost connection it reconnects and wakes every subscriber, since notifications sent meanwhile are gone.
/// </summary>
public sealed class ChangeListener(ShardDatabases shards, LiveHub hub, IWolverineRuntime wolverine, TraceNode node, ILogger<ChangeListener> logger)
    : BackgroundService
{
    private static readonly TimeSpan RetryDelay = TimeSpan.FromSeconds(1);

    protected override Task ExecuteAsync(CancellationToken stopping) =>
        Task.WhenAll(shards.All.Select(shard => ListenAsync(shard.Database, stopping)));

    private async Task ListenAsync(NpgsqlDataSource database, CancellationToken stopping)
    {
        while (!stopping.IsCancellationRequested)
        {
            try
            {
                await using var connection = await database.OpenConnectionAsync(stopping);
                connection.Notification += (_, notification) => Dispatch(notification.Payload);
                await using (var listen = new NpgsqlCommand($"listen {CommitNotice.Channel}", connection))
                    await listen.ExecuteNonQueryAsync(stopping);
                hub.WakeAll();
                while (!stopping.IsCancellationRequested) await connection.WaitAsync(stopping);
            }
            catch (OperationCanceledException) when (stopping.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is NpgsqlException or TimeoutException or InvalidOperationException)
            {
                logger.LogWarning("Lost the change notification connection ({Reason}); reconnecting", e.Message);
                await Task.Delay(RetryDelay, stopping).ContinueWith(_ => { }, CancellationToken.None);
            }
        }
    }

    private void Dispatch(string payload)
    {
        if (CommitNotice.Read(payload) is not { } commit)
        {
            logger.LogWarning("Ignored a malformed change notification");
            return;
        }
        // The write's trace goes on here: Wolverine's handling, and the deliveries it leads to, are children of this span.
        using var heard = SyncTracing.Source.StartActivity(SyncTracing.NoticeHeard, ActivityKind.Consumer, SyncTracing.ContextOf(commit.Trace) ?? default);
        heard?.SetTag(SyncTracing.NodeTag, node.Id);
        _ = PublishAsync(commit);
    }

    /// <summary>Hands the commit over without waiting for it: Npgsql raises notifications on its reading thread.</summary>
    private async Task PublishAsync(ChangesCommitted commit)
    {
        try
        {
            await new MessageBus(wolverine).PublishAsync(commit);
        }
        catch (Exception e)
        {
            logger.LogWarning(e, "Could not hand a change notification to this node's subscribers");
        }
    }
}
