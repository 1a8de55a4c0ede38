using System.Diagnostics;
using System.Text.Json.Nodes;
using ManaSync.Web.Infrastructure;
using Npgsql;

namespace ManaSync.Testing;

/// <summary>
/// A pg_auto_failover formation on loopback: a monitor, a primary and its synchronous standby, each a
/// PostgreSQL of its own on a free port, all in one temporary folder (`pg_autoctl` as the postgres user
/// when we are root, its state kept in that folder). The monitor's health checks are tightened so a
/// failover takes seconds, not half a minute. The formation removes itself once the test process is gone.
/// </summary>
public sealed class Formation : IAsyncDisposable
{
    private const string Database = "manasync";
    private static readonly string[] DataNodes = ["n1", "n2"];
    private readonly string _folder;
    private readonly int _monitorPort;
    private readonly Dictionary<string, int> _nodePorts = [];

    private Formation(string folder, int monitorPort)
    {
        _folder = folder;
        _monitorPort = monitorPort;
    }

    /// <summary>The formation as ManaSync is given it: both data nodes, in the URL form pg_autoctl prints.</summary>
    public string DatabaseUrl =>
        $"postgres://postgres@{string.Join(',', _nodePorts.Values.Select(port => $"127.0.0.1:{port}"))}/{Database}?target_session_attrs=read-write";

    /// <summary>One node directly, as the database owner (past row security), to check what it holds.</summary>
    public string ConnectionStringTo(string node) =>
        $"Host=127.0.0.1;Port={_nodePorts[node]};Username=postgres;Database={Database};Pooling=false";

    public static async Task<Formation> StartAsync()
    {
        var folder = Path.Combine(Path.GetTempPath(), "manasync-formation-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(folder);
        if (Environment.IsPrivilegedProcess) await RunAsync("chown", [EmbeddedPostgres.SystemUser, folder]);
        var formation = new Formation(folder, LoopbackPort.Free());
        ProcessReaper.WhenGone(formation.TeardownCommand());

        var monitor = formation.DataDirectory("monitor");
        await formation.AutoctlAsync("create", "monitor", "--pgdata", monitor, "--pgport", formation._monitorPort.ToString(),
            "--hostname", "127.0.0.1", "--auth", "trust", "--no-ssl", "--pgctl", PgCtl());
        await formation.AutoctlAsync("config", "set", "--pgdata", monitor, "postgresql.listen_addresses", "127.0.0.1");
        await File.AppendAllTextAsync(Path.Combine(monitor, "postgresql.conf"), """

            pgautofailover.health_check_period = 2000
            pgautofailover.health_check_timeout = 2000
            pgautofailover.health_check_max_retries = 2
            pgautofailover.health_check_retry_delay = 1000
            pgautofailover.node_considered_unhealthy_timeout = 8000
            pgautofailover.primary_demote_timeout = 8000
            """);
        formation.StartKeeper("run", "--pgdata", monitor);

        foreach (var node in DataNodes)
        {
            formation._nodePorts[node] = LoopbackPort.Free();
            formation.StartKeeper("create", "postgres", "--pgdata", formation.DataDirectory(node),
                "--pgport", formation._nodePorts[node].ToString(), "--listen", "127.0.0.1", "--name", node,
                "--monitor", $"postgres://autoctl_node@127.0.0.1:{formation._monitorPort}/pg_auto_failover",
                "--dbname", Database, "--username", "postgres", "--hostname", "127.0.0.1", "--auth", "trust", "--no-ssl",
                "--pgctl", PgCtl(), "--run");
            await formation.WaitUntilHealthyAsync(formation._nodePorts.Count, TimeSpan.FromSeconds(120));
        }
        return formation;
    }

    /// <summary>The data node the monitor has as primary now.</summary>
    public async Task<string> PrimaryAsync() =>
        (await StateAsync()).Single(node => node.Reported == "primary" && node.Assigned == "primary").Name;

    /// <summary>Kills the primary as a power cut would: its keeper, its PostgreSQL and every backend, with SIGKILL.</summary>
    public async Task<string> KillPrimaryAsync() => await KillAsync(await PrimaryAsync());

    /// <summary>Kills a data node (keeper, PostgreSQL, backends) with SIGKILL.</summary>
    public async Task<string> KillAsync(string node)
    {
        var postmaster = PostmasterOf(node);
        var victims = ChildrenOf(postmaster).Append(postmaster).ToList();
        if (KeeperGroupOf(node) is { } group) await RunAsync("kill", ["-KILL", "--", $"-{group}"], check: false);
        foreach (var pid in victims) await RunAsync("kill", ["-KILL", pid.ToString()], check: false);
        return node;
    }

    /// <summary>
    /// Stops the primary's WAL senders (SIGSTOP) until disposed (SIGCONT): what the primary writes meanwhile is not
    /// sent, as when it dies before sending it. (Stopping the standby's receiver is not enough: what was already
    /// sent waits in its socket and is read after.) Only while nothing commits: a commit would wait for them.
    /// </summary>
    public async Task<IAsyncDisposable> PauseReplicationAsync()
    {
        var senders = ChildrenOf(PostmasterOf(await PrimaryAsync()))
            .Where(pid => File.ReadAllText($"/proc/{pid}/cmdline").StartsWith("postgres: walsender", StringComparison.Ordinal))
            .ToList();
        if (senders.Count == 0) throw new InvalidOperationException("The primary has no WAL sender.");
        foreach (var sender in senders) await RunAsync("kill", ["-STOP", sender.ToString()]);
        return new Resume(senders);
    }

    private sealed record Resume(IReadOnlyList<int> Processes) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            foreach (var process in Processes) await RunAsync("kill", ["-CONT", process.ToString()], check: false);
        }
    }

    /// <summary>Waits until another node than <paramref name="former"/> is primary and accepts writes.</summary>
    public async Task<string> WaitForNewPrimaryAsync(string former, TimeSpan within)
    {
        var deadline = DateTime.UtcNow + within;
        while (DateTime.UtcNow < deadline)
        {
            var primary = (await StateAsync()).FirstOrDefault(node => node.Name != former && node.Assigned is "primary" or "wait_primary" or "single");
            if (primary is not null && await AcceptsWritesAsync(primary.Name)) return primary.Name;
            await Task.Delay(250);
        }
        throw new TimeoutException($"No node took over from {former} within {within}:\n{await StateTextAsync()}");
    }

    /// <summary>Starts a killed node's keeper again: it rewinds, rejoins as the standby, and replication is synchronous again.</summary>
    public async Task RejoinAsync(string node)
    {
        StartKeeper("run", "--pgdata", DataDirectory(node));
        await WaitUntilHealthyAsync(2, TimeSpan.FromSeconds(120));
    }

    /// <summary>A planned switchover (maintenance): the standby becomes primary, the primary its standby.</summary>
    public async Task<string> SwitchoverAsync()
    {
        var former = await PrimaryAsync();
        await AutoctlAsync("perform", "switchover", "--pgdata", DataDirectory("monitor"), "--formation", "default");
        await WaitUntilHealthyAsync(2, TimeSpan.FromSeconds(120));
        var now = await PrimaryAsync();
        return now != former ? now : throw new InvalidOperationException($"{former} is still primary after the switchover.");
    }

    public async Task<string> StateTextAsync() => await AutoctlOutputAsync("show", "state", "--pgdata", DataDirectory("monitor"));

    public async ValueTask DisposeAsync() => await RunAsync("sh", ["-c", TeardownCommand()], check: false);

    private sealed record NodeState(string Name, string Reported, string Assigned);

    private async Task<List<NodeState>> StateAsync()
    {
        var json = await AutoctlOutputAsync("show", "state", "--json", "--pgdata", DataDirectory("monitor"));
        return JsonNode.Parse(json)!.AsArray().Select(node => new NodeState(node!["nodename"]!.GetValue<string>(),
            node["current_group_state"]!.GetValue<string>(), node["assigned_group_state"]!.GetValue<string>())).ToList();
    }

    /// <summary>
    /// Waits for a primary with <paramref name="nodes"/> − 1 standbys in sync. A joining standby's base backup waits
    /// for a spread checkpoint on the primary, so checkpoints are asked for meanwhile.
    /// </summary>
    private async Task WaitUntilHealthyAsync(int nodes, TimeSpan within)
    {
        var deadline = DateTime.UtcNow + within;
        while (DateTime.UtcNow < deadline)
        {
            List<NodeState> state = [];
            try
            {
                state = await StateAsync();
            }
            catch (InvalidOperationException)
            {
                // The monitor is not answering yet.
            }
            var primaries = state.Where(node => node.Reported == node.Assigned && node.Assigned is "primary" or "single").ToList();
            var standbys = state.Count(node => node.Reported == "secondary" && node.Assigned == "secondary");
            if (primaries.Count == 1 && standbys == nodes - 1 && state.Count == nodes && await AcceptsWritesAsync(primaries[0].Name))
                return;
            foreach (var primary in state.Where(node => node.Reported is "primary" or "wait_primary" or "single"))
                await CheckpointAsync(primary.Name);
            await Task.Delay(250);
        }
        throw new TimeoutException($"The formation did not reach {nodes} healthy nodes within {within}:\n{await StateTextAsync()}");
    }

    private async Task<bool> AcceptsWritesAsync(string node)
    {
        try
        {
            await using var connection = new NpgsqlConnection(ConnectionStringTo(node) + ";Timeout=2");
            await connection.OpenAsync();
            await using var query = new NpgsqlCommand("select not pg_is_in_recovery()", connection);
            return (bool)(await query.ExecuteScalarAsync())!;
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException)
        {
            return false;
        }
    }

    private async Task CheckpointAsync(string node)
    {
        try
        {
            await using var connection = new NpgsqlConnection(ConnectionStringTo(node) + ";Timeout=2");
            await connection.OpenAsync();
            await using var checkpoint = new NpgsqlCommand("checkpoint", connection);
            await checkpoint.ExecuteNonQueryAsync();
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException)
        {
            // Not up yet.
        }
    }

    private string DataDirectory(string node) => Path.Combine(_folder, node);

    /// <summary>
    /// Ends the formation: first the keepers (and their renamed helpers) by process group — only the keeper's own
    /// command line names the folder, and the pattern is bracketed so that it does not match the shell running it —
    /// so that none restarts its PostgreSQL; then each PostgreSQL with `pg_ctl stop -m immediate`, which takes its
    /// background workers with it (SIGKILL to a monitor's postmaster left its health-check worker running); then the folder.
    /// </summary>
    private string TeardownCommand()
    {
        var keepers = ProcessReaper.Quote($"[p]g_autoctl .*{System.Text.RegularExpressions.Regex.Escape(_folder)}/");
        var stops = DataNodes.Append("monitor").Select(node => string.Join(' ',
            EmbeddedPostgres.AsSystemUser(PgCtl(), ["-D", DataDirectory(node), "-m", "immediate", "stop"]).Select(ProcessReaper.Quote)));
        return $"for pid in $(pgrep -f {keepers}); do pkill -KILL -g $(ps -o pgid= -p $pid | tr -d ' ') pg_autoctl; done; " +
               string.Join("; ", stops) + $"; rm -rf {ProcessReaper.Quote(_folder)}";
    }

    /// <summary>The keeper of a node runs in a session of its own (setsid); its process group holds the keeper's helpers.</summary>
    private int? KeeperGroupOf(string node)
    {
        foreach (var process in Process.GetProcessesByName("pg_autoctl"))
        {
            using (process)
            {
                var commandLine = File.Exists($"/proc/{process.Id}/cmdline") ? File.ReadAllText($"/proc/{process.Id}/cmdline") : "";
                if (commandLine.Contains(DataDirectory(node) + "\0"))
                    return ProcessGroupOf(process.Id);
            }
        }
        return null;
    }

    private int PostmasterOf(string node) => int.Parse(File.ReadLines(Path.Combine(DataDirectory(node), "postmaster.pid")).First());

    private static int ProcessGroupOf(int pid) => int.Parse(ProcStat(pid)[2]);

    /// <summary>The fields of /proc/pid/stat after the command name: state, ppid, pgrp, ….</summary>
    private static string[] ProcStat(int pid)
    {
        var stat = File.ReadAllText($"/proc/{pid}/stat");
        return stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
    }

    private static IEnumerable<int> ChildrenOf(int parent) =>
        Directory.GetDirectories("/proc")
            .Select(Path.GetFileName)
            .Where(name => int.TryParse(name, out _))
            .Select(int.Parse!)
            .Where(pid =>
            {
                try { return int.Parse(ProcStat(pid)[1]) == parent; }
                catch (IOException) { return false; }
            })
            .ToList();

    private void StartKeeper(params string[] arguments)
    {
        // setsid: the keeper and what it starts form a process group of their own, which a test kills at once.
        var start = new ProcessStartInfo("setsid") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in AutoctlCommand(arguments)) start.ArgumentList.Add(argument);
        var keeper = Process.Start(start)!;
        var log = Path.Combine(_folder, $"keeper-{keeper.Id}.log");
        keeper.OutputDataReceived += (_, line) => { if (line.Data is not null) File.AppendAllText(log, line.Data + "\n"); };
        keeper.ErrorDataReceived += (_, line) => { if (line.Data is not null) File.AppendAllText(log, line.Data + "\n"); };
        keeper.BeginOutputReadLine();
        keeper.BeginErrorReadLine();
    }

    private Task AutoctlAsync(params string[] arguments) => AutoctlOutputAsync(arguments);

    private async Task<string> AutoctlOutputAsync(params string[] arguments)
    {
        var command = AutoctlCommand(arguments);
        return await RunAsync(command[0], command[1..]);
    }

    /// <summary>pg_autoctl as the postgres user when root, with its configuration and state in the formation's folder.</summary>
    private string[] AutoctlCommand(string[] arguments) =>
        EmbeddedPostgres.AsSystemUser("env", [$"XDG_CONFIG_HOME={_folder}/config", $"XDG_DATA_HOME={_folder}/data",
            $"XDG_RUNTIME_DIR={_folder}/run", "pg_autoctl", .. arguments]);

    /// <summary>
    /// The pg_ctl the embedded clusters use, as the real file: pg_autoctl finds postgres and its extension beside the
    /// pg_ctl it is given, and a symbolic link on PATH (/usr/local/bin here) has neither beside it.
    /// </summary>
    private static string PgCtl()
    {
        var pgCtl = new FileInfo(Path.Combine(EmbeddedPostgres.FindBinaries(), "pg_ctl"));
        return pgCtl.ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? pgCtl.FullName;
    }

    private static async Task<string> RunAsync(string program, string[] arguments, bool check = true)
    {
        var start = new ProcessStartInfo(program) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in arguments) start.ArgumentList.Add(argument);
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var errors = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        if (check && process.ExitCode != 0)
            throw new InvalidOperationException($"{program} {string.Join(' ', arguments)} failed ({process.ExitCode}): {await errors}");
        return await output;
    }
}
