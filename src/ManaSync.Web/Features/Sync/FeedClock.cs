using ManaSync.Projections.Records;
using ManaSync.Web.Infrastructure;
using ManaSync.Web.Infrastructure.Isolation;
using Marten;
using Npgsql;

namespace ManaSync.Web.Features.Sync;

/// <summary>
/// The time in front of every cursor token, and where a legacy (RFC 3339) cursor starts reading. See
/// docs/architecture.md, "Cursors clients compare as strings", for why this keeps the string minimum of
/// a device's cursors safe.
/// </summary>
/// <remarks>
/// <para>Every event has a time g: for an event migrated from the Go service, the latest receive time
/// (created_at) of its migration chunk; for an event ManaSync stored itself, the native epoch, fixed
/// when the first server started. Marks record them per transaction: "events of transaction tx, and of
/// every later one, have g ≥ at" (at is a running maximum, in whole seconds).</para>
/// <para>The token of a position carries the greatest g before it; a legacy cursor T reads from the first
/// mark whose time reaches T's second. Tokens then sort as strings exactly as the feed does, and against
/// an RFC 3339 time so that whichever of the two a device picks as its minimum, it reads all that either
/// cursor lacked.</para>
/// <para>Marks are read and written through functions that run as their owner, so the request role needs
/// no grant on the table.</para>
/// </remarks>
public static class FeedClock
{
    private const string Schema = """
        create table if not exists manasync.feed_marks (
          tx bigint primary key,
          at timestamptz not null,
          native boolean not null default false
        );
        create index if not exists ix_feed_marks_at on manasync.feed_marks (at);

        -- The latest mark's transaction and the greatest time of all: enough for a token after every mark.
        create or replace function manasync.feed_clock(out tx bigint, out at timestamptz)
          language sql stable security definer set search_path = manasync, pg_temp
          as $$ select max(tx), max(at) from manasync.feed_marks $$;

        -- The marks up to a transaction, for tokens of positions that are not after the latest mark.
        create or replace function manasync.feed_marks_through(last_tx bigint, out tx bigint, out at timestamptz)
          returns setof record
          language sql stable security definer set search_path = manasync, pg_temp
          as $$ select tx, at from manasync.feed_marks where tx <= last_tx order by tx $$;

        -- Where a legacy cursor starts: the first mark that reaches its second; else the native epoch's mark,
        -- since a device whose cursor is later than every mark still lacks everything ManaSync stored itself.
        create or replace function manasync.feed_legacy_start(since timestamptz) returns bigint
          language sql stable security definer set search_path = manasync, pg_temp
          as $$ select coalesce(
                 (select min(tx) from manasync.feed_marks where at >= date_trunc('second', since)),
                 (select tx from manasync.feed_marks where native), 0) $$;

        -- Marks the calling transaction's events (a migration chunk) as received up to the given time.
        create or replace function manasync.feed_mark(received timestamptz) returns void
          language sql volatile security definer set search_path = manasync, pg_temp
          as $$ insert into manasync.feed_marks (tx, at)
                select pg_current_xact_id()::text::bigint,
                       greatest(date_trunc('second', received), coalesce((select max(at) from manasync.feed_marks), '-infinity'))
                on conflict (tx) do update set at = greatest(feed_marks.at, excluded.at) $$;
        """;

    /// <summary>
    /// The native epoch, once: every later transaction's events carry its time, the second before the
    /// first server started (so tokens sort below the current time at once), or the latest migrated
    /// mark if later. Devices switched from the Go service after it stopped hold cursors before either.
    /// Events stored without a mark (by a version from before marks) are covered too: it starts at 0.
    /// </summary>
    private const string NativeEpoch = """
        select pg_advisory_xact_lock(hashtextextended('manasync.feed_marks', 0));
        insert into manasync.feed_marks (tx, at, native)
        select case when exists (select from manasync.mt_events as e
                                 where not exists (select from manasync.feed_marks as m where m.tx = (e.data ->> 'commitTx')::bigint))
                    then 0 else pg_current_xact_id()::text::bigint end,
               greatest(date_trunc('second', now()) - interval '1 second',
                        coalesce((select max(at) from manasync.feed_marks), '-infinity')),
               true
        where not exists (select from manasync.feed_marks where native);
        """;

    /// <summary>Creates the marks and their functions (idempotent).</summary>
    public static async Task CreateAsync(NpgsqlDataSource database, CancellationToken cancellation)
    {
        await using var command = database.CreateCommand(Schema);
        await command.ExecuteNonQueryAsync(cancellation);
    }

    /// <summary>Creates the marks and starts the native epoch, as a server does before it serves.</summary>
    public static async Task StartAsync(NpgsqlDataSource database, CancellationToken cancellation)
    {
        await CreateAsync(database, cancellation);
        await using var connection = await database.OpenConnectionAsync(cancellation);
        await using var transaction = await connection.BeginTransactionAsync(cancellation);
        await using (var command = new NpgsqlCommand(NativeEpoch, connection, transaction))
            await command.ExecuteNonQueryAsync(cancellation);
        await transaction.CommitAsync(cancellation);
    }

    /// <summary>In a migration chunk's transaction: its events were received up to this time.</summary>
    public static NpgsqlBatchCommand MarkCommand(DateTimeOffset receivedUpTo) =>
        SessionBatch.Command("select manasync.feed_mark($1)", receivedUpTo);

    /// <summary>Where a legacy cursor starts reading: one row, the transaction to start at.</summary>
    public static NpgsqlBatchCommand LegacyStartCommand(DateTimeOffset legacy) =>
        SessionBatch.Command("select manasync.feed_legacy_start($1)", legacy);

    /// <summary>The SQL of one row: the latest mark's transaction and the greatest time (both null without marks).</summary>
    public const string LatestSql = "select row_to_json(clock) from manasync.feed_clock() as clock";

    /// <summary>The latest mark's transaction and the greatest time of all marks.</summary>
    public sealed record Latest(long? Tx, DateTimeOffset? At);

    /// <summary>
    /// What it takes to write the tokens of positions read at one moment (each carries the greatest time
    /// of the events before it): usually only the latest mark, since positions are after it; the marks up
    /// to the latest of the others otherwise.
    /// </summary>
    public static async Task<CursorTimes> TimesAsync(CallerSession<IQuerySession> scope, Latest latest, IEnumerable<Position> positions,
        CancellationToken cancellation)
    {
        var within = positions.Where(position => position.Tx <= latest.Tx).Select(position => position.Tx).DefaultIfEmpty().Max();
        if (within == 0) return new CursorTimes(latest, []);
        await using var reader = await scope.ExecuteAsync(
            [SessionBatch.Command("select row_to_json(mark) from manasync.feed_marks_through($1) as mark", within)], cancellation);
        return new CursorTimes(latest, await SessionBatch.ReadDocumentsAsync<Mark>(reader, scope.Serializer, cancellation));
    }

    public sealed record Mark(long Tx, DateTimeOffset At);
}

/// <summary>Writes cursor tokens for positions of one read (<see cref="FeedClock.TimesAsync"/>).</summary>
public sealed class CursorTimes(FeedClock.Latest latest, IReadOnlyList<FeedClock.Mark> marks)
{
    public string Token(Position position) => Cursor.Encode(position, position.Tx > latest.Tx ? latest.At : TimeBefore(position));

    /// <summary>The greatest time of the marks whose transaction holds events before the position.</summary>
    private DateTimeOffset? TimeBefore(Position position) =>
        marks.Where(mark => mark.Tx < position.Tx || (mark.Tx == position.Tx && position.Index > 0))
            .Select(mark => (DateTimeOffset?)mark.At)
            .Max();
}
