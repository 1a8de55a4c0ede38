using System.Diagnostics;
using System.Text.Json;
using System.Threading.Channels;
using ManaSync.Web.Auth;
using ManaSync.Web.Configuration;
using ManaSync.Web.Features.Sync;
using ManaSync.Web.Infrastructure;
using ManaSync.Web.Infrastructure.Isolation;
using ManaSync.Web.Infrastructure.Preamble;
using ManaSync.Web.Infrastructure.Tracing;
using Wolverine.Http;

namespace ManaSync.Web.Features.Live;

/// <summary>
/// GET /sync/{appId}/stream: server-sent events. First the backlog since the cursor, page by page,
/// then live changes as pushes commit on any node. Every changes event carries the cursor after it
/// as its id, so a reconnect with Last-Event-ID resumes exactly there.
/// </summary>
public static class StreamEndpoint
{
    /// <summary>
    /// Even without a notification (one that never arrives, say on a listener connection that died
    /// unnoticed), a stream rereads about this often (see <see cref="RereadSchedule"/>). Idle streams
    /// cost what they reread: at 15 s, 1,000 idle streams took a quarter of a core (docs/benchmarks.md).
    /// </summary>
    public static readonly TimeSpan PollInterval = TimeSpan.FromSeconds(60);

    /// <summary>A read that an older, still-running transaction held back is retried this soon at first.</summary>
    public static readonly TimeSpan HeldBackRetry = TimeSpan.FromSeconds(1);

    public static readonly TimeSpan WriteTimeout = TimeSpan.FromSeconds(30);

    [WolverineGet("/sync/{appId}/stream"), BillingGated]
    public static async Task Get(string appId, [NotBody] Caller caller, HttpContext http, CallerSessions sessions, LiveHub hub,
        LiveConnections connections, ServerSettings settings, TimeProvider time, TraceNode node,
        IHostApplicationLifetime lifetime)
    {
        var resumeFrom = http.Request.Headers["Last-Event-ID"].ToString() is { Length: > 0 } lastEventId
            ? lastEventId
            : http.Request.Query["since"].ToString();
        if (!Cursor.TryRead(resumeFrom, out var since))
        {
            await ApiError.BadRequest("since / Last-Event-ID is not a cursor this server issued.").ExecuteAsync(http);
            return;
        }

        // A stream ends when its client leaves or the server shuts down (the client then resumes elsewhere).
        using var ending = CancellationTokenSource.CreateLinkedTokenSource(http.RequestAborted, lifetime.ApplicationStopping);
        var cancellation = ending.Token;
        var userId = caller.UserId;
        var scopes = caller.Scopes;
        var collections = http.Request.Query["collections"].ToString()
            .Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries) is { Length: > 0 } listed
            ? listed
            : null;
        var clientId = http.Request.Headers["X-Client-Id"].ToString() is { Length: > 0 } id ? id : null;
        var expiresAt = http.User.ExpiresAt() ?? DateTimeOffset.MaxValue;

        // Subscribe before reading the backlog, so a commit in between still wakes the stream.
        var wake = Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });
        var causes = new LiveCauses();
        var stream = Activity.Current?.Context;
        using var subscription = hub.Subscribe(scopes,
            commit => commit.AppId == appId && commit.Scopes.Intersect(scopes).Any() &&
                      (collections is null || commit.Tables.Count == 0 || commit.Tables.Intersect(collections).Any()),
            commit =>
            {
                causes.Add(LiveCause.Of(commit));
                wake.Writer.TryWrite(true);
            });
        using var registration = connections.Open(userId);

        var sse = new SseWriter(http.Response, WriteTimeout);
        try
        {
            await sse.StartAsync(cancellation);
            var nextHeartbeat = time.GetUtcNow() + settings.SseHeartbeat;
            var reread = new RereadSchedule(time, PollInterval, HeldBackRetry, Random.Shared.NextDouble);
            while (true)
            {
                if (reread.Due)
                {
                    using var delivery = LiveCause.StartDelivery(causes.Take(), "sse", node, stream);
                    try
                    {
                        FeedPage page;
                        do
                        {
                            page = await sessions.ReadFeedAsync(caller,
                                new FeedRequest(scopes, appId, collections, since, clientId, ChangeFeed.DefaultLimit), cancellation);
                            await WritePageAsync(sse, page, cancellation);
                            since = new Since(page.Next);
                        } while (page.HasMore);
                        reread.Read(page.HeldBack);
                    }
                    catch (Exception e) when (DatabaseUnavailable.Is(e) && !cancellation.IsCancellationRequested)
                    {
                        // No primary right now (a failover): the stream stays open, heartbeats go on, and it reads
                        // again soon, backing off as for a held-back read; the listener's reconnect wakes it at once.
                        reread.Read(heldBack: true);
                    }
                }

                var now = time.GetUtcNow();
                if (now >= expiresAt)
                {
                    await sse.WriteAsync("auth-expired", "{}", null, cancellation);
                    return;
                }
                if (now >= nextHeartbeat)
                {
                    await sse.WriteAsync("heartbeat", "{}", null, cancellation);
                    nextHeartbeat = now + settings.SseHeartbeat;
                }
                var wait = new[] { nextHeartbeat - now, expiresAt - now, reread.Next - now }.Min();
                if (await WaitForWakeAsync(wake.Reader, wait, time, cancellation)) reread.Wake();
            }
        }
        catch (OperationCanceledException) when (cancellation.IsCancellationRequested)
        {
            // The client went away, or the server is shutting down.
        }
        catch (SlowConsumerException)
        {
            http.Abort();
        }
    }

    /// <summary>
    /// One changes event per run of consecutive changes to the same table. Each event's id is the
    /// cursor just after its last change, so a client cut off between two events resumes exactly.
    /// </summary>
    private static async Task WritePageAsync(SseWriter sse, FeedPage page, CancellationToken cancellation)
    {
        var runs = new List<List<FeedEntry>>();
        foreach (var entry in page.Entries)
        {
            if (runs.Count == 0 || runs[^1][0].Change.Table != entry.Change.Table) runs.Add([]);
            runs[^1].Add(entry);
        }
        for (var i = 0; i < runs.Count; i++)
        {
            var last = i == runs.Count - 1;
            var cursor = last ? page.NextToken : page.Times.Token(runs[i][^1].After);
            var data = JsonSerializer.Serialize(new StreamChanges(
                runs[i].Select(entry => entry.Change).ToList(), !last || page.HasMore, cursor, runs[i][0].Change.Table),
                WireJson.Options);
            await sse.WriteAsync("changes", data, cursor, cancellation);
        }
    }

    /// <returns>Whether a commit woke the stream (rather than the time to heartbeat, reread or expire).</returns>
    private static async Task<bool> WaitForWakeAsync(ChannelReader<bool> wake, TimeSpan wait, TimeProvider time,
        CancellationToken cancellation)
    {
        using var timeout = new CancellationTokenSource(wait > TimeSpan.Zero ? wait : TimeSpan.Zero, time);
        using var either = CancellationTokenSource.CreateLinkedTokenSource(cancellation, timeout.Token);
        try
        {
            await wake.WaitToReadAsync(either.Token);
            return wake.TryRead(out _);
        }
        catch (OperationCanceledException) when (!cancellation.IsCancellationRequested)
        {
            return false;
        }
    }

    private sealed record StreamChanges(IReadOnlyList<WireChange> Changes, bool HasMore, string SyncedUntil, string Table);
}
