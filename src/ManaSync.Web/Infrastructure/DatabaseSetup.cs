using ManaSync.Web.Configuration;

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
                return new DatabaseSetup(DatabaseUrl.ToConnectionString(url), null);
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

    private static string DefaultDataDirectory() => Environment.IsPrivilegedProcess
        ? "/var/lib/manasync/postgres"
        : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData), "manasync", "postgres");

    public ValueTask DisposeAsync() => _embedded?.DisposeAsync() ?? ValueTask.CompletedTask;
}
