using ManaSync.Web.Infrastructure;
using ManaSync.Web.Infrastructure.Isolation;
using Npgsql;
using Wolverine.Http;

namespace ManaSync.Web.Features.Audit;

public sealed record AuditTable(string AppId, string Table, long Records);

/// <summary>
/// GET /audit/users/{userId}/tables: the apps and tables of the records the user sees (their own and their spaces'), each
/// with how many records it holds, deleted ones included. The user themself, or an auditor.
/// </summary>
public static class UserTablesEndpoint
{
    [WolverineGet("/audit/users/{userId}/tables")]
    public static async Task<IResult> Get(string userId, [NotBody] Caller caller, HttpContext http, CallerSessions sessions)
    {
        var counts = new Dictionary<(string, string), long>();
        foreach (var shard in await sessions.ShardsOfAsync(caller, http.RequestAborted))
        {
            await using var scope = await sessions.ReadAsync(caller, http.RequestAborted, shard);
            // A view a record moved out of only says where it went: it is not a record here.
            var count = new NpgsqlBatchCommand(
                $"""
                select app_id, table_name, count(*) from {MartenSetup.Schema}.{Projections.Records.RecordViewUpsert.Table}
                where scope = any($1) and data ->> 'movedTo' is null group by app_id, table_name
                """) { Parameters = { new NpgsqlParameter { Value = caller.Scopes.ToArray() } } };
            await using var reader = await scope.ExecuteAsync([count], http.RequestAborted);
            while (await reader.ReadAsync(http.RequestAborted))
            {
                var key = (reader.GetString(0), reader.GetString(1));
                counts[key] = counts.GetValueOrDefault(key) + reader.GetInt64(2);
            }
        }
        return Results.Json(new
        {
            userId = caller.UserId,
            tables = counts.Select(entry => new AuditTable(entry.Key.Item1, entry.Key.Item2, entry.Value))
                .OrderBy(table => table.AppId, StringComparer.Ordinal).ThenBy(table => table.Table, StringComparer.Ordinal),
        }, WireJson.Options);
    }
}
