using Npgsql;

namespace ManaSync.Web.Infrastructure.Sharding;

/// <summary>
/// Where a scope has left a shard for another (<see cref="ScopeMove"/>), the shard keeps a fence for it: a node whose
/// cached shard map still sends the scope there finds the fence, forgets its cached home and is told to retry
/// (503, as for a failover), so nothing is written to or read from a shard a scope has left. Writers enter the
/// scopes they write under a shared lock, which a move takes exclusively while it sets the fence: every write that
/// entered before is in the move's last copy, and none enters after.
/// </summary>
public static class ScopeFences
{
    /// <summary>What PostgreSQL raises for a write into a scope that has left the shard: <see cref="DatabaseUnavailable"/> answers 503.</summary>
    public const string MovedState = "MSMOV";

    public static bool IsMoved(Exception? failure)
    {
        for (var e = failure; e is not null; e = e.InnerException)
            if (e is PostgresException { SqlState: MovedState }) return true;
        return false;
    }

    private const string Schema = $$"""
        create table if not exists manasync.scope_fences (
          scope text primary key,
          moved_to text not null,
          at timestamptz not null default now()
        );

        -- A writer enters the scopes it writes: waits while one is being fenced, and fails if one has left.
        create or replace function manasync.enter_scopes(scopes text[]) returns void
          language plpgsql volatile security definer set search_path = manasync, pg_temp as $$
        declare
          gone text;
        begin
          perform pg_advisory_xact_lock_shared(h)
            from (select distinct hashtextextended('scope:' || s, 0) as h from unnest(scopes) as s order by h) as locks;
          select scope into gone from manasync.scope_fences where scope = any(scopes) limit 1;
          if gone is not null then
            raise exception 'scope % has moved to another shard', gone using errcode = '{{MovedState}}';
          end if;
        end $$;

        -- Which of these scopes have left the shard: readers ask with every read.
        create or replace function manasync.fenced_scopes(scopes text[]) returns text[]
          language sql stable security definer set search_path = manasync, pg_temp as $$
          select coalesce(array_agg(scope), '{}') from manasync.scope_fences where scope = any(scopes) $$;

        grant execute on function manasync.enter_scopes(text[]), manasync.fenced_scopes(text[]) to manasync_app;
        """;

    public static Task CreateAsync(NpgsqlDataSource shard, CancellationToken cancellation) =>
        SchemaScript.ApplyAsync(shard, "manasync.scope_fences", Schema, cancellation);

    /// <summary>A writer's statement entering the scopes it is about to write (<see cref="MovedState"/> if one has left).</summary>
    public static NpgsqlBatchCommand EnterCommand(IEnumerable<string> scopes) =>
        new("select manasync.enter_scopes($1)") { Parameters = { new NpgsqlParameter { Value = scopes.Distinct().ToArray() } } };

    /// <summary>A reader's statement: one row, the reader's scopes that have left the shard.</summary>
    public static NpgsqlBatchCommand FencedCommand(IEnumerable<string> scopes) =>
        new("select manasync.fenced_scopes($1)") { Parameters = { new NpgsqlParameter { Value = scopes.ToArray() } } };

    /// <summary>
    /// Fences a scope on the shard it leaves: waits for every write that entered it, then sets the fence, in one
    /// transaction run as the server's own role. <paramref name="inFence"/> runs after the wait, before the fence is
    /// committed (the move's last copy).
    /// </summary>
    public static async Task FenceAsync(NpgsqlDataSource shard, string scope, string movedTo, Func<Task> inFence, CancellationToken cancellation)
    {
        await using var connection = await shard.OpenConnectionAsync(cancellation);
        await using var transaction = await connection.BeginTransactionAsync(cancellation);
        await using (var wait = new NpgsqlCommand("select pg_advisory_xact_lock(hashtextextended('scope:' || $1, 0))", connection, transaction))
        {
            wait.Parameters.Add(new NpgsqlParameter { Value = scope });
            await wait.ExecuteNonQueryAsync(cancellation);
        }
        await inFence();
        await using (var fence = new NpgsqlCommand(
                         "insert into manasync.scope_fences (scope, moved_to) values ($1, $2) on conflict (scope) do update set moved_to = $2",
                         connection, transaction))
        {
            fence.Parameters.Add(new NpgsqlParameter { Value = scope });
            fence.Parameters.Add(new NpgsqlParameter { Value = movedTo });
            await fence.ExecuteNonQueryAsync(cancellation);
        }
        await transaction.CommitAsync(cancellation);
    }

    /// <summary>Lifts a scope's fence on a shard it moves (back) to, before any node is sent there.</summary>
    public static async Task LiftAsync(NpgsqlDataSource shard, string scope, CancellationToken cancellation)
    {
        await using var command = shard.CreateCommand("delete from manasync.scope_fences where scope = $1");
        command.Parameters.Add(new NpgsqlParameter { Value = scope });
        await command.ExecuteNonQueryAsync(cancellation);
    }
}
