using System.Collections.Concurrent;
using ManaSync.Projections.Records;
using Npgsql;

namespace ManaSync.Web.Infrastructure.Sharding;

/// <summary>
/// Where each scope (a user's own records, or a shared space's) lives: one row per scope in main's
/// <c>manasync.shard_map</c>. A scope is placed the first time anyone asks where it is — a writer about to store
/// into it, or a reader about to read it — a user by <see cref="ShardSet.PlaceNew"/>, a space with that user, and
/// stays there until moved. Readers
/// place too: a reader that skipped a scope it found unplaced could hand out a cursor past a write that placed it
/// a moment later. Scopes stored before SHARDS was first set are recorded as main's when the map is created.
/// </summary>
public sealed class ShardMap(ShardDatabases databases)
{
    /// <summary>Homes change only by a move; the bound keeps a node's memory flat however many scopes it has met.</summary>
    private const int MaxCached = 100_000;

    private readonly ConcurrentDictionary<string, string> _homes = new(StringComparer.Ordinal);

    public ShardSet Shards => databases.Shards;

    private const string Schema = """
        create table if not exists manasync.shard_map (
          scope text primary key,
          shard text not null,
          placed_at timestamptz not null default now()
        );
        create table if not exists manasync.shard_map_started (started_at timestamptz not null);
        """;

    /// <summary>
    /// The scopes main held before it had a map are main's. Their views are read with row security lifted for this
    /// transaction alone (the owner may; nothing else runs in it), once, by the first node to start sharded.
    /// </summary>
    private const string Start = """
        do $$
        begin
          if not exists (select from manasync.shard_map_started) then
            alter table manasync.mt_doc_recordview no force row level security;
            insert into manasync.shard_map (scope, shard)
              select distinct scope, 'main' from manasync.mt_doc_recordview on conflict do nothing;
            alter table manasync.mt_doc_recordview force row level security;
            insert into manasync.shard_map_started values (now());
          end if;
        end $$;
        """;

    /// <summary>Creates the map in main and records main's existing scopes (idempotent).</summary>
    public static Task CreateAsync(NpgsqlDataSource main, CancellationToken cancellation) =>
        SchemaScript.ApplyAsync(main, "manasync.shard_map", Schema + Start, cancellation);

    /// <summary>The shard of each scope, placing those never seen before.</summary>
    /// <param name="spacesWith">Where to place a space never seen before: with the user who first writes or reads it (its
    /// creator, usually; and a user's personal space, into which deployed clients move all their records at login,
    /// stays with them). Null: by weight, as users.</param>
    public async Task<IReadOnlyDictionary<string, string>> HomesAsync(IEnumerable<string> scopes, CancellationToken cancellation,
        string? spacesWith = null)
    {
        var homes = new Dictionary<string, string>(StringComparer.Ordinal);
        var unknown = new List<string>();
        foreach (var scope in scopes.Distinct())
            if (_homes.TryGetValue(scope, out var shard)) homes[scope] = shard;
            else unknown.Add(scope);
        if (unknown.Count == 0) return homes;

        var placements = unknown
            .Select(scope => spacesWith is not null && RecordKey.SpaceOf(scope) is not null ? spacesWith : databases.Shards.PlaceNew(scope))
            .ToArray();
        if (_homes.Count > MaxCached) _homes.Clear();
        // A placement another node committed while this one waited shows in neither half of the statement
        // (its snapshot predates it): read those again.
        for (var missing = unknown; missing.Count > 0; missing = missing.Where(scope => !homes.ContainsKey(scope)).ToList())
        {
            await using var command = databases.Main.CreateCommand(
                "with placed as (insert into manasync.shard_map (scope, shard) select * from unnest($1::text[], $2::text[]) " +
                "on conflict do nothing returning scope, shard) " +
                "select scope, shard from placed union all select scope, shard from manasync.shard_map where scope = any($1)");
            command.Parameters.Add(new NpgsqlParameter { Value = missing.ToArray() });
            command.Parameters.Add(new NpgsqlParameter { Value = missing.Select(scope => placements[unknown.IndexOf(scope)]).ToArray() });
            await using var reader = await command.ExecuteReaderAsync(cancellation);
            while (await reader.ReadAsync(cancellation))
            {
                var (scope, shard) = (reader.GetString(0), reader.GetString(1));
                homes[scope] = shard;
                _homes[scope] = shard;
            }
        }
        return homes;
    }

    /// <summary>Forgets where these scopes live, after finding one gone from there: the next ask reads the map.</summary>
    public void Forget(IEnumerable<string> scopes)
    {
        foreach (var scope in scopes) _homes.TryRemove(scope, out _);
    }

    /// <summary>Puts a scope in a shard, placed before or not (a move's switch).</summary>
    public static async Task AssignAsync(NpgsqlDataSource main, string scope, string shard, CancellationToken cancellation)
    {
        await using var command = main.CreateCommand(
            "insert into manasync.shard_map (scope, shard) values ($1, $2) on conflict (scope) do update set shard = $2, placed_at = now()");
        command.Parameters.Add(new NpgsqlParameter { Value = scope });
        command.Parameters.Add(new NpgsqlParameter { Value = shard });
        await command.ExecuteNonQueryAsync(cancellation);
    }

    /// <summary>Where a scope lives, without placing it: null when it has never been placed.</summary>
    public static async Task<string?> FindAsync(NpgsqlDataSource main, string scope, CancellationToken cancellation)
    {
        await using var command = main.CreateCommand("select shard from manasync.shard_map where scope = $1");
        command.Parameters.Add(new NpgsqlParameter { Value = scope });
        return await command.ExecuteScalarAsync(cancellation) as string;
    }
}
