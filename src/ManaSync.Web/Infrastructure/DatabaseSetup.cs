using ManaSync.Web.Configuration;
using Npgsql;

namespace ManaSync.Web.Infrastructure;

/// <summary>The database the server uses: DATABASE_URL, or else an embedded cluster it runs itself.</summary>
public sealed class DatabaseSetup : IAsyncDisposable
{
    private readonly EmbeddedPostgres? _embedded;

    private DatabaseSetup(string connectionString, EmbeddedPostgres? embedded)
    {
        ConnectionString = connectionString;
        _embedded = embedded;
    }

    public string ConnectionString { get; }

    public static async Task<DatabaseSetup> ResolveAsync(ServerSettings settings)
    {
        if (settings.DatabaseUrl is { } url)
        {
            try
            {
                return new DatabaseSetup(WritingTo(DatabaseUrl.ToConnectionString(url)), null);
            }
            catch (Exception e) when (e is FormatException or ArgumentException)
            {
                throw new InvalidSettingException("DATABASE_URL", "(hidden)", e.Message);
            }
        }

        var dataDirectory = settings.DataDirectory ?? DefaultDataDirectory();
        Console.Error.WriteLine($"DATABASE_URL is not set: starting the embedded PostgreSQL in {dataDirectory}");
        var embedded = await EmbeddedPostgres.StartAsync(dataDirectory);
        return new DatabaseSetup(embedded.ConnectionString, embedded);
    }

    /// <summary>ManaSync writes, so a target that may pick a standby is refused rather than failing every push.</summary>
    private static string WritingTo(string connectionString)
    {
        var target = new NpgsqlConnectionStringBuilder(connectionString).TargetSessionAttributes;
        return target is null or "read-write" or "primary"
            ? connectionString
            : throw new FormatException($"target_session_attributes={target} may connect to a standby; ManaSync writes: use read-write or primary");
    }

    private static string DefaultDataDirectory() => Environment.IsPrivilegedProcess
        ? "/var/lib/manasync/postgres"
        : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData), "manasync", "postgres");

    public ValueTask DisposeAsync() => _embedded?.DisposeAsync() ?? ValueTask.CompletedTask;
}
