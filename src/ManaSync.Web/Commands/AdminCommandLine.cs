using ManaSync.Web.Infrastructure;
using ManaSync.Web.Infrastructure.Isolation;
using Npgsql;

namespace ManaSync.Web.Commands;

/// <summary>What the server's command line needs before JasperFx takes over.</summary>
public static class AdminCommandLine
{
    /// <summary>`projections --rebuild` (the documented form) is Marten's `projections rebuild`.</summary>
    public static string[] Normalize(string[] args) =>
        args is ["projections", .. var rest] && rest.Contains("--rebuild")
            ? ["projections", "rebuild", .. rest.Where(arg => arg != "--rebuild")]
            : args;

    /// <summary>
    /// A rebuild replays every user's events (offline, `projections rebuild`, or online, `rebuild`), a migration from the Go service writes many users' changes in one
    /// transaction, and the shards commands count every user's rows: they must run as a role that row security does
    /// not filter (under a filtered role a rebuild would see no events and rebuild an empty view).
    /// </summary>
    public static bool NeedsRowSecurityBypass(string[] args) =>
        args is ["projections", "rebuild", ..] or ["rebuild", ..] or ["migrate-from-go", ..] or ["shards", ..];

    /// <summary>Commands whose standard output is their answer, for scripts: logs and banners go to standard error.</summary>
    public static bool WritesToStandardOutput(string[] args) => args is ["replay", ..] && !args.Contains("--out") || args is ["shards", ..];

    public static async Task<string?> RowSecurityBypassRefusalAsync(string connectionString, string command)
    {
        await using var database = DataSources.Create(connectionString);
        return await RowSecurityBypassRefusalAsync(database, command);
    }

    /// <returns>Why <paramref name="command"/> cannot run as the role of this database's connections, or null when it can.</returns>
    public static async Task<string?> RowSecurityBypassRefusalAsync(NpgsqlDataSource database, string command)
    {
        await using var connection = await database.OpenConnectionAsync();
        await using var check = new NpgsqlCommand("select rolsuper or rolbypassrls from pg_roles where rolname = current_user", connection);
        return (bool)(await check.ExecuteScalarAsync())!
            ? null
            : $"'{command}' must run as a role that bypasses row-level security (superuser or BYPASSRLS), " +
              $"not as '{connection.UserName}': set DATABASE_URL to such a role for this command.";
    }
}
