using JasperFx.CommandLine;
using ManaSync.Events.Upcasting;
using ManaSync.Projections.Records;
using ManaSync.Web.Features.Sharding;
using Marten;
using ManaSync.Web.Infrastructure.Sharding;
using Npgsql;

namespace ManaSync.Web.Commands;

public sealed class ShardsInput : NetCoreInput
{
    [Description("list, where or move")]
    public string Action { get; set; } = "";

    [Description("A user id or a space id")]
    public string Scope { get; set; } = "";

    [Description("The shard to move the scope to")]
    public string Target { get; set; } = "";

    [Description("Seconds to wait after the switch before removing the scope from the shard it left (default 10)")]
    public int GraceFlag { get; set; } = 10;
}

/// <summary>
/// `shards list`: each shard with the scopes and events it holds; `shards where &lt;scope&gt;`: the shard holding a
/// user id or space id; `shards move &lt;scope&gt; &lt;shard&gt;`: moves it there online (PROTOCOL §12, <see cref="ScopeMove"/>).
/// They read and write every user's rows, so they run as a role that bypasses row security.
/// </summary>
[Description("Show the shards and where a user or space lives", Name = "shards")]
public sealed class ShardsCommand : JasperFxAsyncCommand<ShardsInput>
{
    public ShardsCommand()
    {
        Usage("Each shard with its scope and event counts").Arguments(input => input.Action);
        Usage("The shard holding a user id or space id").Arguments(input => input.Action, input => input.Scope);
        Usage("Move a user's or a space's data to another shard while the server serves").Arguments(input => input.Action, input => input.Scope,
            input => input.Target);
    }

    public override async Task<bool> Execute(ShardsInput input)
    {
        using var host = input.BuildHost();
        var databases = host.Services.GetRequiredService<ShardDatabases>();
        // Standard output is the answer (AdminCommandLine sends everything else to standard error).
        await using var output = new StreamWriter(Console.OpenStandardOutput());
        switch (input.Action)
        {
            case "list":
                foreach (var (shard, database) in databases.All)
                {
                    var (scopes, events) = await CountAsync(database);
                    await output.WriteLineAsync($"{shard.Name}\tscopes={scopes}\tevents={events}");
                }
                return true;
            case "where" when input.Scope.Length > 0:
                await output.WriteLineAsync((await ResolveAsync(databases, input.Scope)).Shard);
                return true;
            case "move" when input.Scope.Length > 0 && input.Target.Length > 0:
                if (!databases.Shards.Contains(input.Target))
                {
                    await Console.Error.WriteLineAsync($"No shard is named '{input.Target}'.");
                    return false;
                }
                var move = new ScopeMove(host.Services.GetRequiredService<IDocumentStore>(), databases,
                    host.Services.GetRequiredService<ChangeUpcasting>());
                var report = await move.RunAsync((await ResolveAsync(databases, input.Scope)).Scope, input.Target,
                    TimeSpan.FromSeconds(input.GraceFlag), Console.Error, CancellationToken.None);
                await output.WriteLineAsync($"{report.Scope} moved from {report.From} to {report.To}: {report.Events} events, {report.Views} records; " +
                                            $"{report.Removed} events removed from {report.From}");
                return true;
            default:
                await Console.Error.WriteLineAsync("usage: shards list | shards where <user or space id> | shards move <user or space id> <shard>");
                return false;
        }
    }

    private static async Task<(long Scopes, long Events)> CountAsync(NpgsqlDataSource database)
    {
        await using var command = database.CreateCommand(
            "select (select count(distinct scope) from manasync.mt_doc_recordview), (select count(*) from manasync.mt_events)");
        await using var reader = await command.ExecuteReaderAsync();
        await reader.ReadAsync();
        return (reader.GetInt64(0), reader.GetInt64(1));
    }

    /// <summary>
    /// The scope an id names and where it lives: a user's own scope if placed, else a space's of that id; neither placed:
    /// the user's, and where its data will go. (An id that is both a user's and a space's is read as the user's: space
    /// ids are the auth service's organisation ids. "u:…" and "s:…" name a scope outright.)
    /// </summary>
    private static async Task<(string Scope, string Shard)> ResolveAsync(ShardDatabases databases, string id)
    {
        string[] candidates = id.StartsWith("u:", StringComparison.Ordinal) || id.StartsWith("s:", StringComparison.Ordinal)
            ? [id]
            : [RecordKey.UserScope(id), RecordKey.SpaceScope(id)];
        if (!databases.Shards.IsSharded) return (candidates[0], databases.Shards.Main.Name);
        foreach (var scope in candidates)
            if (await ShardMap.FindAsync(databases.Main, scope, CancellationToken.None) is { } shard) return (scope, shard);
        return (candidates[0], databases.Shards.PlaceNew(candidates[0]));
    }
}
