using ManaSync.Projections.Records;
using ManaSync.Web.Infrastructure.Isolation;
using Marten;
using ManaSync.Web.Infrastructure.Sharding;
using Npgsql;

namespace ManaSync.Web.Features.Sync;

/// <summary>A reader's session on one shard, and the reader's scopes that live there.</summary>
public sealed record ShardRead(string Shard, CallerSession<IQuerySession> Session, IReadOnlyList<string> Scopes);

/// <summary>
/// The feed across shards: one cursor over the record views of every shard holding the reader's scopes, in stamp
/// order (<see cref="FeedStamps"/>). Each shard's horizon is read, idle shards are raised to the busy ones', and every
/// shard's page is read below the lowest horizon and merged; so a slow, lagging or unreachable shard holds the cursor
/// back and never lets it pass a change of its own.
/// </summary>
public static class ShardedFeed
{
    /// <param name="main">A session on main, whose feed clock writes the time in front of every token.</param>
    /// <param name="shards">The shards holding the reader's scopes; each session is used by this read alone.</param>
    /// <param name="acceptFenced">Read scopes a shard has fenced (<see cref="ScopeFences"/>) there all the same: the caller has just
    /// read the shard map afresh and it still sends them there (a move has fenced them and not yet switched: their
    /// data there is complete, since nothing is written to them meanwhile).</param>
    /// <exception cref="ScopesFencedException">A shard has fenced scopes it was asked for.</exception>
    public static async Task<FeedPage> ReadAsync(CallerSession<IQuerySession> main, IReadOnlyList<ShardRead> shards, FeedRequest request,
        bool acceptFenced, CancellationToken cancellation)
    {
        var clock = await ReadClockAsync(main, request.Since.Legacy, cancellation);
        if (clock.LegacyStart is { } start)
            request = request with { Since = request.Since with { From = new Position(start, 0), Legacy = null } };

        var ranges = shards.Select(shard => new ChangeFeed.FeedRanges(request with { Scopes = shard.Scopes })).ToList();
        var (horizon, newest, fenced) = await ReadHorizonAsync(shards, ranges, cancellation);
        if (fenced.Count > 0 && !acceptFenced) throw new ScopesFencedException(fenced);
        var deadline = DateTime.UtcNow + ChangeFeed.MaxSettleWait;
        // Committed changes beyond the horizon: an older write still running holds them back. Wait briefly, as ChangeFeed does.
        while (horizon <= newest && DateTime.UtcNow < deadline)
        {
            await Task.Delay(TimeSpan.FromMilliseconds(5), cancellation);
            (horizon, newest, _) = await ReadHorizonAsync(shards, ranges, cancellation);
        }
        var heldBack = horizon <= newest;
        var from = request.Since.From.Tx > horizon ? new Position(horizon, 0) : request.Since.From;
        if (from != request.Since.From)
        {
            request = request with { Since = request.Since with { From = from } };
            ranges = shards.Select(shard => new ChangeFeed.FeedRanges(request with { Scopes = shard.Scopes })).ToList();
        }

        var pages = await Task.WhenAll(shards.Select((shard, i) => ChangeFeed.ReadPageAsync(shard.Session, ranges[i], horizon, cancellation)));
        var rows = pages.SelectMany(page => page).OrderBy(view => view.Position).Take(request.Limit + 1).ToList();
        var hasMore = rows.Count > request.Limit;
        var page = hasMore ? rows.Take(request.Limit).ToList() : rows;
        var newestSeen = Math.Max(newest, page.Count > 0 ? page[^1].PositionTx : 0);
        var next = hasMore ? ChangeFeed.After(page[^1]) : Position.Max(from, new Position(ChangeFeed.ResumeAt(horizon, newestSeen), 0));
        var times = await FeedClock.TimesAsync(main, clock.Latest, page.Select(ChangeFeed.After).Append(next), cancellation);
        var scopes = request.Scopes.ToHashSet();
        var entries = page
            .SelectMany(view => ChangeEmitter.Emit(view, request.Since, request.ExcludeClientId, scopes, request.FromScratch)
                .Select(change => new FeedEntry(change, ChangeFeed.After(view))))
            .ToList();
        return new FeedPage(entries, next, times, hasMore, heldBack);
    }

    private sealed record Clock(FeedClock.Latest Latest, long? LegacyStart);

    /// <summary>Main's feed clock and, for a legacy cursor, where it starts: main alone holds marks (the Go service's history).</summary>
    private static async Task<Clock> ReadClockAsync(CallerSession<IQuerySession> main, DateTimeOffset? legacy, CancellationToken cancellation)
    {
        await using var reader = await main.ExecuteAsync(
            legacy is { } time ? [new NpgsqlBatchCommand(FeedClock.LatestSql), FeedClock.LegacyStartCommand(time)] : [new NpgsqlBatchCommand(FeedClock.LatestSql)],
            cancellation);
        await reader.ReadAsync(cancellation);
        var latest = main.Serializer.FromJson<FeedClock.Latest>(reader, 0);
        if (legacy is null) return new Clock(latest, null);
        await reader.NextResultAsync(cancellation);
        await reader.ReadAsync(cancellation);
        return new Clock(latest, reader.GetInt64(0));
    }

    /// <summary>A shard's last stamp, smallest running stamp, newest change in the reader's ranges, and the reader's scopes it has fenced.</summary>
    private sealed record Head(long Last, long? Running, long Newest, string[] Fenced)
    {
        public long Horizon => Math.Min(Running ?? long.MaxValue, Last + 1);
    }

    /// <summary>
    /// The lowest horizon of the shards, after raising shards with no write running to the lowest horizon of those
    /// with one (or, when none has one, to the highest): their last stamp would otherwise hold every reader back.
    /// A shard raised is read again after the raise, since a writer may have taken a stamp below it just before.
    /// </summary>
    private static async Task<(long Horizon, long Newest, IReadOnlyList<string> Fenced)> ReadHorizonAsync(IReadOnlyList<ShardRead> shards, List<ChangeFeed.FeedRanges> ranges,
        CancellationToken cancellation)
    {
        var heads = await Task.WhenAll(shards.Select((shard, i) => ReadHeadAsync(shard, ranges[i], null, cancellation)));
        var busy = heads.Where(head => head.Running is not null).Select(head => head.Horizon).ToList();
        var target = busy.Count > 0 ? busy.Min() : heads.Max(head => head.Horizon);
        for (var i = 0; i < heads.Length; i++)
            if (heads[i].Running is null && heads[i].Horizon < target)
                heads[i] = await ReadHeadAsync(shards[i], ranges[i], target, cancellation);
        return (heads.Min(head => head.Horizon), heads.Max(head => head.Newest), heads.SelectMany(head => head.Fenced).ToList());
    }

    /// <param name="raiseTo">Raise the shard's stamps to this first.</param>
    private static async Task<Head> ReadHeadAsync(ShardRead shard, ChangeFeed.FeedRanges ranges, long? raiseTo, CancellationToken cancellation)
    {
        // The last stamp before the running ones, in separate statements in this order (FeedStamps).
        List<NpgsqlBatchCommand> commands =
            [new(FeedStamps.LastSql), new(FeedStamps.RunningSql), ranges.Command(ranges.Newest), ScopeFences.FencedCommand(shard.Scopes)];
        if (raiseTo is { } floor) commands.Insert(0, FeedStamps.RaiseCommand(floor));
        await using var reader = await shard.Session.ExecuteAsync(commands, cancellation);
        if (raiseTo is not null) await reader.NextResultAsync(cancellation);
        await reader.ReadAsync(cancellation);
        var last = reader.GetInt64(0);
        await reader.NextResultAsync(cancellation);
        await reader.ReadAsync(cancellation);
        long? running = await reader.IsDBNullAsync(0, cancellation) ? null : reader.GetInt64(0);
        await reader.NextResultAsync(cancellation);
        await reader.ReadAsync(cancellation);
        var newest = reader.GetInt64(0);
        await reader.NextResultAsync(cancellation);
        await reader.ReadAsync(cancellation);
        return new Head(last, running, newest, reader.GetFieldValue<string[]>(0));
    }
}

/// <summary>Scopes a shard was asked for have left it: the reader's shard map is out of date.</summary>
public sealed class ScopesFencedException(IReadOnlyList<string> scopes) : Exception($"Scopes moved to another shard: {string.Join(", ", scopes)}")
{
    public IReadOnlyList<string> Scopes { get; } = scopes;
}
