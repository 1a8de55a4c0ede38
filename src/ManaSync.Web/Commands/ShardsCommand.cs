using JasperFx.CommandLine;
using ManaSync.Projections.Records;
using ManaSync.Web.Infrastructure.Sharding;
using Npgsql;

namespace ManaSync.Web.Commands;

public sealed class ShardsInput : NetCoreInput
{
    [Description("list, or where")]
    public string Action { get; set; } = "";

    [Description("A user id or a space id")]
    public string Scope { get; set; } = "";
}

/// <summary>
/// `shards list`: each shard with the scopes and events it holds; `shards where &lt;scope&gt;`: the shard holding a
/// user id or space id (PROTOCOL §12). Counts read every user's rows, so this runs as a role that bypasses row security.
/// </summary>
[Description("Show the shards and where a user or space lives", Name = "shards")]
public sealed class ShardsCommand : JasperFxAsyncCommand<ShardsInput>
{
    public ShardsCommand()
    {
        Usage("Each shard with its scope and event counts").Arguments(input => input.Action);
        Usage("The shard holding a user id or space id").Arguments(input => input.Action, input => input.Scope);
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
                await output.WriteLineAsync(await WhereAsync(databases, input.Scope));
                return true;
            default:
                await Console.Error.WriteLineAsync("usage: shards list | shards where <user or space id>");
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
    /// A user's own scope if placed, else a space's of that id; neither placed: where the user's data will go. (An id that
    /// is both a user's and a space's is read as the user's: space ids are the auth service's organisation ids.)
    /// </summary>
    private static async Task<string> WhereAsync(ShardDatabases databases, string id)
    {
        if (!databases.Shards.IsSharded) return databases.Shards.Main.Name;
        var user = RecordKey.UserScope(id);
        return await ShardMap.FindAsync(databases.Main, user, CancellationToken.None)
               ?? await ShardMap.FindAsync(databases.Main, RecordKey.SpaceScope(id), CancellationToken.None)
               ?? databases.Shards.PlaceNew(user);
    }
}
