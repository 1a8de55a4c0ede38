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
        var script = Path.GetTempFileName();
        await File.WriteAllTextAsync(script, $$$"""
            \set user random(1, 16)
            insert into raw_changes (stream, data)
            select 'todo:user-' || :user,
                   ('{"table":"tasks","id":"' || gen_random_uuid() || '","op":"insert","data":{"title":"Buy oat milk ' || g ||
                    '","done":false,"order":' || g || ',"note":"Two litres, the barista kind"}}')::jsonb
            from generate_series(1, {{{rowsPerTransaction}}}) as g;
            """);
        try
        {
            return await PgbenchAsync(database, script, clients, duration);
        }
        finally
        {
            File.Delete(script);
        }
    }

    public static async Task ExecuteAsync(string database, string sql)
    {
        await using var connection = new NpgsqlConnection(database);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection) { CommandTimeout = 0 };
        await command.ExecuteNonQueryAsync();
    }

    private static async Task<PgbenchResult> PgbenchAsync(string database, string script, int clients, TimeSpan duration)
    {
        var connection = new NpgsqlConnectionStringBuilder(database);
        var start = new ProcessStartInfo("pgbench")
        {
            ArgumentList =
            {
                "-n", "-c", clients.ToString(), "-j", Math.Min(clients, Environment.ProcessorCount).ToString(),
                "-T", ((int)duration.TotalSeconds).ToString(), "-f", script,
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

    private static double Number(Regex pattern, string output) =>
        double.Parse(pattern.Match(output) is { Success: true } match ? match.Groups[1].Value : throw new FormatException(output),
            CultureInfo.InvariantCulture);

    [GeneratedRegex(@"tps = ([\d.]+)")]
    private static partial Regex Tps();

    [GeneratedRegex(@"latency average = ([\d.]+) ms")]
    private static partial Regex Latency();
}
