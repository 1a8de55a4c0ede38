using ManaSync.Web.Configuration;
using ManaSync.Web.Infrastructure.Sharding;
using Npgsql;

namespace ManaSync.Web.Infrastructure;

/// <summary>
/// The databases the server uses: DATABASE_URL (or else an embedded cluster it runs itself) as the main shard,
/// and the shards SHARDS adds.
/// </summary>
public sealed class DatabaseSetup : IAsyncDisposable
{
    private readonly EmbeddedPostgres? _embedded;

    private DatabaseSetup(ShardSet shards, EmbeddedPostgres? embedded)
    {
        Shards = shards;
        _embedded = embedded;
    }

    public ShardSet Shards { get; }

    /// <summary>The main shard's connection string.</summary>
    public string ConnectionString => Shards.Main.ConnectionString;

    public static async Task<DatabaseSetup> ResolveAsync(ServerSettings settings)
    {
        // Checked before an embedded cluster starts, so a bad SHARDS stops nothing half started.
        var others = settings.Shards.Select(shard => new Shard(shard.Name, Resolve("SHARDS", shard.Connection, $"shard {shard.Name}: "))).ToList();
        string main;
        EmbeddedPostgres? embedded = null;
        if (settings.DatabaseUrl is { } url)
            main = Resolve("DATABASE_URL", url, "");
        else
        {
            var dataDirectory = settings.DataDirectory ?? DefaultDataDirectory();
            Console.Error.WriteLine($"DATABASE_URL is not set: starting the embedded PostgreSQL in {dataDirectory}");
            embedded = await EmbeddedPostgres.StartAsync(dataDirectory);
            main = embedded.ConnectionString;
        }
        try
        {
            return new DatabaseSetup(new ShardSet([new Shard(ShardList.Main, main), .. others], settings.ShardWeights), embedded);
        }
        catch (FormatException e)
        {
            if (embedded is not null) await embedded.DisposeAsync();
            throw new InvalidSettingException("SHARD_WEIGHTS", string.Join(' ', settings.ShardWeights.Select(w => $"{w.Key}={w.Value}")), e.Message);
        }
    }

    private static string Resolve(string variable, string connection, string prefix)
    {
        try
        {
            return WritingTo(DatabaseUrl.ToConnectionString(connection));
        }
        catch (Exception e) when (e is FormatException or ArgumentException)
        {
            throw new InvalidSettingException(variable, "(hidden)", prefix + e.Message);
        }
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
