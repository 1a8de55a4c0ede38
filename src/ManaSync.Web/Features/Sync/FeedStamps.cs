using ManaSync.Web.Infrastructure;
using Npgsql;

namespace ManaSync.Web.Features.Sync;

/// <summary>
/// Positions that compare across shards. Unsharded, a write's position is its transaction id and the commit horizon
/// is the oldest transaction still running (<see cref="ChangeFeed"/>); but transaction ids of two clusters do not
/// compare. With shards, every write transaction takes a stamp instead: microseconds of its shard's clock, above
/// every stamp that shard handed out before (docs/architecture.md, "Cursors across shards").
/// </summary>
/// <remarks>
/// <para>A writer takes its stamp under a brief lock of its shard (a session lock around three statements, not
/// held to commit), so a shard hands out stamps in increasing order; it announces the stamp as a shared advisory lock
/// that it holds until its transaction ends, and only then publishes it as the shard's last stamp (a sequence,
/// which every session sees at once, outside transactions).</para>
/// <para>A shard's horizon — no transaction that commits later has a stamp below it — is the smallest stamp still
/// announced, or else the last stamp plus one. A reader reads the last stamp first and the announcements after: a
/// writer whose stamp it read as the last one announced it before publishing it, so the reader sees it running or
/// sees its commit. Across shards the horizon is the lowest shard's. A shard that nobody writes to would hold that
/// back, so a reader raises its last stamp to the others' horizon (under the same lock): writers take stamps above it.</para>
/// <para>Stamps (about 1.8e15 today) lie above every transaction id a deployment used before it was sharded, so
/// main's older positions sort before them and cursors issued before stay valid.</para>
/// </remarks>
public static class FeedStamps
{
    /// <summary>The lock writers take stamps under: one per shard (advisory locks belong to their database).</summary>
    private const string StampingLock = "7881702187703299683"; // "manasync" in ASCII, as a bigint

    private const string Schema = $$"""
        create sequence if not exists manasync.feed_stamps;

        -- A query cancel or statement timeout inside must not leave the session lock held: every writer would wait.
        create or replace function manasync.take_feed_stamp() returns bigint
          language plpgsql volatile security definer set search_path = manasync, pg_temp as $$
        declare
          stamp bigint;
        begin
          perform pg_advisory_lock({{StampingLock}});
          begin
            stamp := greatest((extract(epoch from clock_timestamp()) * 1000000)::bigint,
                              (select last_value from manasync.feed_stamps) + 1);
            perform pg_advisory_xact_lock_shared((stamp >> 32)::int, ((stamp & 4294967295) - ((stamp & 2147483648) << 1))::int);
            perform setval('manasync.feed_stamps', stamp);
          exception when others or query_canceled then
            perform pg_advisory_unlock({{StampingLock}});
            raise;
          end;
          perform pg_advisory_unlock({{StampingLock}});
          return stamp;
        end $$;

        create or replace function manasync.last_feed_stamp() returns bigint
          language sql stable security definer set search_path = manasync, pg_temp as $$
          select last_value from manasync.feed_stamps $$;

        -- The smallest stamp of the transactions still running, as their announcements show them.
        create or replace function manasync.running_feed_stamps() returns bigint
          language sql stable security definer set search_path = manasync, pg_temp as $$
          select min((classid::bigint << 32) | objid::bigint) from pg_locks
          where locktype = 'advisory' and objsubid = 2 and granted
            and database = (select oid from pg_database where datname = current_database()) $$;

        -- Later stamps will lie at or above the given one.
        create or replace function manasync.raise_feed_stamps(floor bigint) returns void
          language plpgsql volatile security definer set search_path = manasync, pg_temp as $$
        begin
          perform pg_advisory_lock({{StampingLock}});
          begin
            if (select last_value from manasync.feed_stamps) < floor - 1 then
              perform setval('manasync.feed_stamps', floor - 1);
            end if;
          exception when others or query_canceled then
            perform pg_advisory_unlock({{StampingLock}});
            raise;
          end;
          perform pg_advisory_unlock({{StampingLock}});
        end $$;

        grant execute on function manasync.take_feed_stamp(), manasync.last_feed_stamp(), manasync.running_feed_stamps(),
          manasync.raise_feed_stamps(bigint) to manasync_app;
        """;

    /// <summary>Creates the stamps and their functions in a shard (idempotent), after row security has made the request role.</summary>
    public static Task CreateAsync(NpgsqlDataSource shard, CancellationToken cancellation) =>
        SchemaScript.ApplyAsync(shard, "manasync.feed_stamps", Schema, cancellation);

    /// <summary>In a writer's first statement: the stamp of everything it stores (a bigint).</summary>
    public const string TakeSql = "manasync.take_feed_stamp()";

    /// <summary>The shard's last stamp: read before <see cref="RunningSql"/>, in an earlier statement.</summary>
    public const string LastSql = "select manasync.last_feed_stamp()";

    /// <summary>The smallest stamp still announced, or null.</summary>
    public const string RunningSql = "select manasync.running_feed_stamps()";

    /// <summary>Makes every later stamp of the shard at least the floor given as <c>$1</c>.</summary>
    public const string RaiseSql = "select manasync.raise_feed_stamps($1)";

    public static NpgsqlBatchCommand RaiseCommand(long floor) => SessionBatch.Command(RaiseSql, floor);
}
