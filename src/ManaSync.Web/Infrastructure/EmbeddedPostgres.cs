using System.Diagnostics;
using System.Security.Cryptography;
using Npgsql;

namespace ManaSync.Web.Infrastructure;

/// <summary>
/// A PostgreSQL cluster this process starts from the machine's server binaries: the development
/// database when DATABASE_URL is unset, and the throwaway database of tests and benchmarks.
/// PostgreSQL refuses to run as root, so as root it runs as the unprivileged "postgres" user.
/// </summary>
public sealed class EmbeddedPostgres : IAsyncDisposable
{
    /// <summary>The unprivileged user PostgreSQL runs as when we are root.</summary>
    public const string SystemUser = "postgres";
    private readonly string _binDirectory;
    private readonly string _dataDirectory;
    private readonly bool _deleteOnStop;
    private readonly int _port;
    private readonly bool _durable;
    private bool _stopped;

    private EmbeddedPostgres(string binDirectory, string dataDirectory, int port, string password, bool durable, bool deleteOnStop)
    {
        _binDirectory = binDirectory;
        _dataDirectory = dataDirectory;
        _deleteOnStop = deleteOnStop;
        _port = port;
        _durable = durable;
        ConnectionString = new NpgsqlConnectionStringBuilder
        {
            Host = "127.0.0.1", Port = port, Username = "postgres", Password = password, Database = "postgres",
        }.ConnectionString;
    }

    /// <summary>Superuser connection to the cluster's "postgres" database.</summary>
    public string ConnectionString { get; }

    /// <summary>Starts (and on first use creates) a cluster that keeps its data in <paramref name="dataDirectory"/>.</summary>
    public static Task<EmbeddedPostgres> StartAsync(string dataDirectory) =>
        StartAsync(dataDirectory, durable: true, deleteOnStop: false);

    /// <summary>
    /// A cluster in a fresh temporary folder, deleted on stop. Unless <paramref name="durable"/>,
    /// durability is traded for speed (no fsync, asynchronous commit): fine for tests that do not
    /// crash the database, wrong for those that do.
    /// </summary>
    public static async Task<EmbeddedPostgres> StartThrowawayAsync(bool durable = false)
    {
        var cluster = await StartAsync(Path.Combine(Path.GetTempPath(), "manasync-pg-" + Guid.NewGuid().ToString("N")[..12]),
            durable, deleteOnStop: true);
        cluster.StartReaper();
        return cluster;
    }

    /// <summary>Stops and deletes the throwaway cluster once this process is gone, however it ends.</summary>
    private void StartReaper()
    {
        var stop = string.Join(' ', AsSystemUser(Path.Combine(_binDirectory, "pg_ctl"),
            ["-D", _dataDirectory, "-m", "immediate", "stop"]).Select(ProcessReaper.Quote));
        ProcessReaper.WhenGone($"{stop} >/dev/null 2>&1; rm -rf {ProcessReaper.Quote(_dataDirectory)} {ProcessReaper.Quote(_dataDirectory + ".password")}");
    }

    private static async Task<EmbeddedPostgres> StartAsync(string dataDirectory, bool durable, bool deleteOnStop)
    {
        var bin = FindBinaries();
        var dataDir = Path.GetFullPath(dataDirectory);
        var passwordFile = dataDir + ".password";
        if (!File.Exists(Path.Combine(dataDir, "PG_VERSION")))
            await InitializeAsync(bin, dataDir, passwordFile);

        var password = (await File.ReadAllTextAsync(passwordFile)).Trim();
        var cluster = new EmbeddedPostgres(bin, dataDir, LoopbackPort.Free(), password, durable, deleteOnStop);
        await cluster.StartServerAsync();
        return cluster;
    }

    private static async Task InitializeAsync(string bin, string dataDir, string passwordFile)
    {
        Directory.CreateDirectory(dataDir);
        await File.WriteAllTextAsync(passwordFile, Convert.ToHexString(RandomNumberGenerator.GetBytes(24)));
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(passwordFile, UnixFileMode.UserRead | UnixFileMode.UserWrite);

        // initdb reads the password from a file the server user can read; it is removed right after.
        var initPasswordFile = Path.Combine(dataDir, "..", "." + Path.GetFileName(dataDir) + ".initpw");
        File.Copy(passwordFile, initPasswordFile, overwrite: true);
        try
        {
            if (Environment.IsPrivilegedProcess)
            {
                await RunAsync("chown", ["-R", SystemUser, dataDir, initPasswordFile], asSystemUser: false);
            }
            await RunAsync(Path.Combine(bin, "initdb"),
                ["-D", dataDir, "-U", "postgres", "--auth=scram-sha-256", "--pwfile=" + initPasswordFile,
                 "-E", "UTF8", "--locale=C", "--no-instructions"], asSystemUser: true);
        }
        finally
        {
            File.Delete(initPasswordFile);
        }
    }

    private async Task StartServerAsync()
    {
        var pgCtl = Path.Combine(_binDirectory, "pg_ctl");
        // A cluster left running by a process that was killed would block the start: stop it first.
        if (File.Exists(Path.Combine(_dataDirectory, "postmaster.pid")))
            await RunAsync(pgCtl, ["-D", _dataDirectory, "-m", "immediate", "-w", "stop"], asSystemUser: true, check: false);

        var options = $"-c listen_addresses=127.0.0.1 -p {_port} -c unix_socket_directories=''";
        if (!_durable) options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off";
        await RunAsync(pgCtl,
            ["-D", _dataDirectory, "-l", Path.Combine(_dataDirectory, "server.log"), "-w", "-t", "60", "-o", options, "start"],
            asSystemUser: true);
    }

    public async Task StopAsync()
    {
        if (_stopped) return;
        _stopped = true;
        // A throwaway cluster's data is deleted right after, so it need not shut down cleanly.
        await RunAsync(Path.Combine(_binDirectory, "pg_ctl"),
            ["-D", _dataDirectory, "-m", _deleteOnStop ? "immediate" : "fast", "-w", "stop"], asSystemUser: true, check: false);
        if (_deleteOnStop)
        {
            Directory.Delete(_dataDirectory, recursive: true);
            File.Delete(_dataDirectory + ".password");
        }
    }

    public ValueTask DisposeAsync() => new(StopAsync());

    /// <summary>Stops the server abruptly, keeping its data, as a crash would (fault tests).</summary>
    public Task CrashAsync() =>
        RunAsync(Path.Combine(_binDirectory, "pg_ctl"), ["-D", _dataDirectory, "-m", "immediate", "-w", "stop"], asSystemUser: true);

    /// <summary>Starts the server again, on the same port, after <see cref="CrashAsync"/>.</summary>
    public Task RestartAsync() => StartServerAsync();

    /// <summary>The command line that runs a program as the unprivileged server user when we are root.</summary>
    public static string[] AsSystemUser(string program, string[] arguments) =>
        Environment.IsPrivilegedProcess
            ? [FindProgram("runuser") ?? throw new EmbeddedPostgresException(
                   "PostgreSQL refuses to run as root and 'runuser' (util-linux) was not found to run it as the postgres user. " +
                   "Run the server as an ordinary user or set DATABASE_URL."),
               "-u", SystemUser, "--", program, .. arguments]
            : [program, .. arguments];

    private static string? FindProgram(string name) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
        .Concat(["/usr/sbin", "/sbin", "/usr/bin", "/bin"])
        .Select(dir => Path.Combine(dir, name))
        .FirstOrDefault(File.Exists);

    /// <summary>The folder of the machine's PostgreSQL server programs (initdb, pg_ctl).</summary>
    public static string FindBinaries()
    {
        var candidates = new List<string>();
        candidates.AddRange((Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries));
        if (Directory.Exists("/usr/lib/postgresql"))
            candidates.AddRange(Directory.GetDirectories("/usr/lib/postgresql")
                .OrderByDescending(dir => int.TryParse(Path.GetFileName(dir), out var major) ? major : 0)
                .Select(dir => Path.Combine(dir, "bin")));
        foreach (var dir in candidates)
            if (File.Exists(Path.Combine(dir, "initdb")) && File.Exists(Path.Combine(dir, "pg_ctl")))
                return dir;
        throw new EmbeddedPostgresException(
            "No PostgreSQL server binaries (initdb, pg_ctl) were found on PATH or in /usr/lib/postgresql/*/bin. " +
            "Install them (Debian/Ubuntu: apt-get install postgresql) or set DATABASE_URL to an existing PostgreSQL.");
    }

    private static async Task RunAsync(string program, string[] arguments, bool asSystemUser, bool check = true)
    {
        var command = asSystemUser ? AsSystemUser(program, arguments) : [program, .. arguments];
        var start = new ProcessStartInfo(command[0], command.Skip(1))
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };

        Process process;
        try
        {
            process = Process.Start(start) ?? throw new EmbeddedPostgresException($"Could not start {program}");
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new EmbeddedPostgresException($"Could not start {start.FileName}: {e.Message}");
        }
        using var _ = process;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        if (check && process.ExitCode != 0)
            throw new EmbeddedPostgresException(
                $"{Path.GetFileName(program)} {string.Join(' ', arguments)} failed ({process.ExitCode}): {await error}{await output}");
    }
}

/// <summary>The embedded cluster could not be created or started; the message says why.</summary>
public sealed class EmbeddedPostgresException(string message) : Exception(message);
