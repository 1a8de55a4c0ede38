using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using Npgsql;

namespace ManaSync.Bench;

/// <summary>The physical limit beside each scenario: PostgreSQL doing the bare storage work, measured with pgbench.</summary>
public static partial class RawPostgres
{
    public sealed record PgbenchResult(double TransactionsPerSecond, double AverageLatencyMs);

    /// <summary>
    /// 50-row INSERT transactions of change JSON into a table shaped like the event log (sequence key,
    /// unique event id, stream index, jsonb body), by <paramref name="clients"/> pgbench clients.
    /// </summary>
    public static async Task<PgbenchResult> InsertChangeRowsAsync(string database, int rowsPerTransaction, int clients, TimeSpan duration)
    {
        await ExecuteAsync(database, """
            create table raw_changes (seq bigserial primary key, event_id uuid not null default gen_random_uuid() unique,
                                      stream text not null, data jsonb not null);
            create index on raw_changes (stream);
            """);
        return await PgbenchAsync(database, $$$"""
            \set user random(1, 16)
            insert into raw_changes (stream, data)
            select 'todo:user-' || :user,
                   ('{"table":"tasks","id":"' || gen_random_uuid() || '","op":"insert","data":{"title":"Buy oat milk ' || g ||
                    '","done":false,"order":' || g || ',"note":"Two litres, the barista kind"}}')::jsonb
            from generate_series(1, {{{rowsPerTransaction}}}) as g;
            """, clients, duration);
    }

    /// <summary>
    /// The least a push must do inside PostgreSQL with ManaSync's schema, written by hand and set-based:
    /// per transaction, as the restricted role with the caller set, take the stream lock, append
    /// <paramref name="rowsPerTransaction"/> events (one statement) and upsert as many record views (one
    /// statement), by <paramref name="clients"/> pgbench clients. No server, no idempotency check, no
    /// merge reads, no feed read, no NOTIFY. <paramref name="database"/> must hold the schema the server
    /// creates at start-up. With <paramref name="updates"/> every user rewrites the same records.
    /// </summary>
    public static async Task<PgbenchResult> StoreChangesFloorAsync(string database, int rowsPerTransaction, bool updates, int clients,
        TimeSpan duration)
    {
        // pgbench replaces ":name" everywhere, string literals included, hence chr(58) for ':'.
        var recordId = updates ? "'u' || :user || '-r' || g" : "'u' || :user || '-r' || :batch || '-' || g";
        // Each client is one user, as each bench device is: no client waits for another's stream lock.
        // Prepared, as the server's own statements are: the floor should be the most a server could reach.
        return await PgbenchAsync(database, $$$"""
            \set user :client_id + 1
            \set batch random(1, 1000000000000)
            begin;
            select pg_advisory_xact_lock(:user);
            set local role manasync_app;
            select set_config('manasync.user_id', 'user-' || :user, true),
                   set_config('manasync.scopes', '{u' || chr(58) || 'user-' || :user || '}', true);
            insert into manasync.mt_streams (id, version) values ('todo' || chr(58) || 'user-' || :user, 0) on conflict (id) do nothing;
            with stream as (select version from manasync.mt_streams where id = 'todo' || chr(58) || 'user-' || :user for update),
                 change as (select g, gen_random_uuid() as event_id, {{{recordId}}} as record_id from generate_series(1, {{{rowsPerTransaction}}}) as g)
            insert into manasync.mt_events (seq_id, id, stream_id, version, data, type, timestamp, mt_dotnet_type)
            select nextval('manasync.mt_events_sequence'), event_id, 'todo' || chr(58) || 'user-' || :user, stream.version + g,
                   jsonb_build_object('op', 'Insert', 'data', {{{Snapshot}}}, 'actor', null, 'appId', 'todo', 'table', 'tasks',
                       'fields', null, 'userId', 'user-' || :user, 'eventId', event_id, 'spaceId', null, 'clientId', null,
                       'commitTx', pg_current_xact_id()::text::bigint, 'recordId', record_id, 'deletedAt', null, 'batchIndex', g,
                       'receivedAt', now(), 'commitIndex', g, 'futureLimit', now() + interval '5 minutes',
                       'payloadHash', md5(record_id) || md5(event_id::text), 'schemaVersion', 1),
                   'change_recorded', now(), 'ManaSync.Events.ChangeRecorded, ManaSync.Events'
            from stream, change order by g;
            update manasync.mt_streams set version = version + {{{rowsPerTransaction}}} where id = 'todo' || chr(58) || 'user-' || :user;
            insert into manasync.mt_doc_recordview (id, data, mt_version, mt_dotnet_type, scope, app_id, table_name, position_tx, position_index)
            select jsonb_build_array('u' || chr(58) || 'user-' || :user, 'todo', 'tasks', record_id)::text,
                   jsonb_build_object('born', jsonb_build_object('tx', pg_current_xact_id()::text::bigint, 'index', g), 'appId', 'todo',
                       'scope', 'u' || chr(58) || 'user-' || :user,
                       'fields', jsonb_build_object('title', jsonb_build_object('value', 'Buy oat milk ' || g, 'write', 0),
                           'done', jsonb_build_object('value', false, 'write', 0), 'order', jsonb_build_object('value', g, 'write', 0),
                           'note', jsonb_build_object('value', 'Two litres, the barista kind', 'write', 0)),
                       'writes', jsonb_build_array(jsonb_build_object('actor', null, 'stamp', now(), 'userId', 'user-' || :user,
                           'eventId', gen_random_uuid(), 'clientId', null,
                           'position', jsonb_build_object('tx', pg_current_xact_id()::text::bigint, 'index', g),
                           'batchIndex', g, 'receivedAt', now(), 'schemaVersion', 1)),
                       'inserted', 0, 'recordId', record_id, 'tableName', 'tasks', 'positionTx', pg_current_xact_id()::text::bigint,
                       'positionIndex', g),
                   1, 'ManaSync.Projections.Records.RecordView', 'u' || chr(58) || 'user-' || :user, 'todo', 'tasks',
                   pg_current_xact_id()::text::bigint, g
            from (select g, {{{recordId}}} as record_id from generate_series(1, {{{rowsPerTransaction}}}) as g) as change
            on conflict (id) do update set data = excluded.data, mt_version = manasync.mt_doc_recordview.mt_version + 1,
                mt_last_modified = excluded.mt_last_modified, position_tx = excluded.position_tx, position_index = excluded.position_index;
            commit;
            """, clients, duration, prepared: true);
    }

    private const string Snapshot =
        "jsonb_build_object('title', 'Buy oat milk ' || g, 'done', false, 'order', g, 'note', 'Two litres, the barista kind')";

    public static async Task ExecuteAsync(string database, string sql)
    {
        await using var connection = new NpgsqlConnection(database);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection) { CommandTimeout = 0 };
        await command.ExecuteNonQueryAsync();
    }

    private static async Task<PgbenchResult> PgbenchAsync(string database, string scriptText, int clients, TimeSpan duration,
        bool prepared = false)
    {
        var script = Path.GetTempFileName();
        await File.WriteAllTextAsync(script, scriptText);
        try
        {
            var connection = new NpgsqlConnectionStringBuilder(database);
            var start = new ProcessStartInfo("pgbench")
            {
                ArgumentList =
                {
                    "-n", "-c", clients.ToString(), "-j", Math.Min(clients, Environment.ProcessorCount).ToString(),
                    "-T", ((int)duration.TotalSeconds).ToString(), "-M", prepared ? "prepared" : "simple", "-f", script,
                    "-h", connection.Host!, "-p", connection.Port.ToString(), "-U", connection.Username!, connection.Database!,
                },
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            };
            start.Environment["PGPASSWORD"] = connection.Password;
            using var process = Process.Start(start) ?? throw new InvalidOperationException("pgbench did not start");
            var output = await process.StandardOutput.ReadToEndAsync();
            var errors = await process.StandardError.ReadToEndAsync();
            await process.WaitForExitAsync();
            if (process.ExitCode != 0) throw new InvalidOperationException($"pgbench failed ({process.ExitCode}): {errors}{output}");
            return new PgbenchResult(Number(Tps(), output), Number(Latency(), output));
        }
        finally
        {
            File.Delete(script);
        }
    }

    private static double Number(Regex pattern, string output) =>
        double.Parse(pattern.Match(output) is { Success: true } match ? match.Groups[1].Value : throw new FormatException(output),
            CultureInfo.InvariantCulture);

    [GeneratedRegex(@"tps = ([\d.]+)")]
    private static partial Regex Tps();

    [GeneratedRegex(@"latency average = ([\d.]+) ms")]
    private static partial Regex Latency();
}
