using System.Diagnostics;
using System.Net;
using System.Text;
using System.Text.Json;
using ManaSync.Web.Infrastructure;

namespace ManaSync.Testing;

/// <summary>
/// The built server (ManaSync.Web.dll) run as its own process on a real Kestrel port, as
/// `dotnet ManaSync.Web.dll` runs in production: for what only real sockets and processes show.
/// </summary>
public sealed class ServerProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();

    private ServerProcess(Process process, int port)
    {
        _process = process;
        BaseAddress = new Uri($"http://127.0.0.1:{port}");
        Client = new HttpClient { BaseAddress = BaseAddress, Timeout = TimeSpan.FromSeconds(60) };
    }

    public Uri BaseAddress { get; }
    public int ProcessId => _process.Id;
    public HttpClient Client { get; }
    public string Output { get { lock (_output) return _output.ToString(); } }

    public static async Task<ServerProcess> StartAsync(string connectionString, IReadOnlyDictionary<string, string>? settings = null)
    {
        var port = LoopbackPort.Free();
        var start = new ProcessStartInfo("dotnet")
        {
            ArgumentList = { BuiltServerDll() },
            WorkingDirectory = Path.GetDirectoryName(BuiltServerDll())!,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.Environment["ASPNETCORE_ENVIRONMENT"] = "Development";
        start.Environment["PORT"] = port.ToString();
        start.Environment["DATABASE_URL"] = connectionString;
        foreach (var (name, value) in settings ?? new Dictionary<string, string>()) start.Environment[name] = value;

        var server = new ServerProcess(Process.Start(start)!, port);
        // A test host killed before it disposes its servers must not leave them running (and retrying their database).
        ProcessReaper.KillWhenGone(server._process.Id, BuiltServerDll());
        server._process.OutputDataReceived += (_, line) => server.Append(line.Data);
        server._process.ErrorDataReceived += (_, line) => server.Append(line.Data);
        server._process.BeginOutputReadLine();
        server._process.BeginErrorReadLine();
        await server.WaitUntilHealthyAsync();
        return server;
    }

    /// <summary>Runs one of the server's commands (`replay`, `verify`, `projections --rebuild`, …) to completion.</summary>
    public static Task<(int ExitCode, string Output, string Errors)> RunCommandAsync(string connectionString, params string[] arguments) =>
        RunCommandAsync(connectionString, new Dictionary<string, string>(), arguments);

    /// <param name="settings">Environment variables beside DATABASE_URL (SHARDS, …).</param>
    public static async Task<(int ExitCode, string Output, string Errors)> RunCommandAsync(string connectionString,
        IReadOnlyDictionary<string, string> settings, params string[] arguments)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = Path.GetDirectoryName(BuiltServerDll())!,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(BuiltServerDll());
        foreach (var argument in arguments) start.ArgumentList.Add(argument);
        start.Environment["ASPNETCORE_ENVIRONMENT"] = "Development";
        start.Environment["DATABASE_URL"] = connectionString;
        foreach (var (name, value) in settings) start.Environment[name] = value;
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var errors = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        return (process.ExitCode, await output, await errors);
    }

    public SyncClient ClientWithToken(string token, string? clientId = null) => new(Client, token, clientId);

    public async Task<SyncClient> ClientForAsync(string userId, string? clientId = null)
    {
        using var response = await Client.PostAsync("/dev/token",
            new StringContent(JsonSerializer.Serialize(new { sub = userId }), Encoding.UTF8, "application/json"));
        response.EnsureSuccessStatusCode();
        using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        return new SyncClient(Client, body.RootElement.GetProperty("token").GetString()!, clientId);
    }

    private async Task WaitUntilHealthyAsync()
    {
        var deadline = DateTime.UtcNow.AddSeconds(120);
        while (DateTime.UtcNow < deadline)
        {
            if (_process.HasExited) throw new InvalidOperationException($"The server exited ({_process.ExitCode}):\n{Output}");
            try
            {
                using var response = await Client.GetAsync("/health");
                if (response.StatusCode == HttpStatusCode.OK) return;
            }
            catch (HttpRequestException)
            {
            }
            await Task.Delay(250);
        }
        throw new TimeoutException($"The server did not become healthy:\n{Output}");
    }

    private void Append(string? line)
    {
        if (line is null) return;
        lock (_output) _output.AppendLine(line);
    }

    /// <summary>The server built in the caller's configuration: src/ManaSync.Web/bin/{config}/net10.0.</summary>
    private static string BuiltServerDll()
    {
        var testDirectory = AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar);
        var framework = Path.GetFileName(testDirectory);
        var configuration = Path.GetFileName(Path.GetDirectoryName(testDirectory)!);
        return Path.Combine(RepositoryRoot(), "src", "ManaSync.Web", "bin", configuration, framework, "ManaSync.Web.dll");
    }

    /// <summary>The folder holding ManaSync.sln, above the running tests or benchmarks.</summary>
    public static string RepositoryRoot()
    {
        var root = new DirectoryInfo(AppContext.BaseDirectory);
        while (root is not null && !File.Exists(Path.Combine(root.FullName, "ManaSync.sln"))) root = root.Parent;
        return root?.FullName ?? throw new InvalidOperationException("ManaSync.sln not found above " + AppContext.BaseDirectory);
    }

    /// <summary>Sends SIGTERM, as an orchestrator stopping the server does, and waits for the exit code.</summary>
    public async Task<int> TerminateAsync(TimeSpan within)
    {
        using (var kill = Process.Start("kill", ["-TERM", _process.Id.ToString()])) await kill.WaitForExitAsync();
        using var bound = new CancellationTokenSource(within);
        await _process.WaitForExitAsync(bound.Token);
        return _process.ExitCode;
    }

    /// <summary>Kills the process outright (SIGKILL, as `kill -9` or the OOM killer does): no shutdown code runs.</summary>
    public async Task KillAsync()
    {
        if (_process.HasExited) return;
        _process.Kill(entireProcessTree: true);
        await _process.WaitForExitAsync();
    }

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        await KillAsync();
        _process.Dispose();
    }
}
