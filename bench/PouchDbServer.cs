using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Text;
using ManaSync.Web.Infrastructure;

namespace ManaSync.Bench;

/// <summary>
/// pouchdb-server, the CouchDB-protocol server a user of a local-first app could pick instead of ManaSync: installed
/// with npm into a cache folder on first use, started on a free loopback port over a temporary folder (LevelDB), and
/// loaded as ManaSync's push is — each device its own database, batches of new documents through <c>_bulk_docs</c>.
/// </summary>
public sealed class PouchDbServer : IAsyncDisposable
{
    public const string Version = "4.2.0";

    private readonly Process _process;
    private readonly DirectoryInfo _data;

    private PouchDbServer(Process process, DirectoryInfo data, int port)
    {
        _process = process;
        _data = data;
        Client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}/"), Timeout = TimeSpan.FromSeconds(60) };
    }

    public HttpClient Client { get; }
    public int ProcessId => _process.Id;

    private static string InstallFolder => Path.Combine(Path.GetTempPath(), $"manasync-bench-pouchdb-server-{Version}");
    private static string Script => Path.Combine(InstallFolder, "node_modules", "pouchdb-server", "bin", "pouchdb-server");

    public static async Task<PouchDbServer> StartAsync()
    {
        if (!File.Exists(Script)) await RunAsync("npm", $"install --prefix {InstallFolder} --no-audit --no-fund pouchdb-server@{Version}");
        var data = Directory.CreateTempSubdirectory("pouchdb-bench-");
        var port = LoopbackPort.Free();
        var process = Process.Start(new ProcessStartInfo("node", $"{Script} --host 127.0.0.1 --port {port} --dir {data.FullName}")
        {
            WorkingDirectory = data.FullName, RedirectStandardOutput = true, RedirectStandardError = true,
        })!;
        // Its per-request log lines are read and dropped, as ManaSync's are.
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var server = new PouchDbServer(process, data, port);
        for (var waited = Stopwatch.StartNew(); ; await Task.Delay(200))
        {
            try
            {
                if ((await server.Client.GetAsync("")).IsSuccessStatusCode) return server;
            }
            catch (HttpRequestException) when (waited.Elapsed < TimeSpan.FromSeconds(60) && !process.HasExited)
            {
            }
        }
    }

    public async Task CreateDatabaseAsync(string name) =>
        (await Client.PutAsync(name, null)).EnsureSuccessStatusCode();

    /// <summary>Stores a batch of documents; false when the server refused any of it.</summary>
    public async Task<bool> BulkDocsAsync(string database, string docsJson)
    {
        using var response = await Client.PostAsync($"{database}/_bulk_docs",
            new StringContent($"{{\"docs\":{docsJson}}}", Encoding.UTF8, "application/json"));
        var body = await response.Content.ReadAsStringAsync();
        return response.StatusCode == HttpStatusCode.Created && !body.Contains("\"error\"");
    }

    /// <summary>CPU time the node process has used.</summary>
    public TimeSpan Cpu => Process.GetProcessById(_process.Id).TotalProcessorTime;

    private static async Task RunAsync(string command, string arguments)
    {
        using var process = Process.Start(new ProcessStartInfo(command, arguments) { RedirectStandardOutput = true, RedirectStandardError = true })!;
        var output = process.StandardOutput.ReadToEndAsync();
        var errors = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        if (process.ExitCode != 0)
            throw new InvalidOperationException($"{command} {arguments} failed ({process.ExitCode}): {await output}{await errors}");
    }

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        if (!_process.HasExited) _process.Kill(entireProcessTree: true);
        await _process.WaitForExitAsync();
        _process.Dispose();
        _data.Delete(recursive: true);
    }
}
