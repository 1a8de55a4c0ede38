using ManaSync.Web.Auth;
using ManaSync.Web.Infrastructure;
using ManaSync.Web.Infrastructure.Isolation;
using ManaSync.Web.Infrastructure.Preamble;
using Npgsql;
using Wolverine.Http;

namespace ManaSync.Web.Features.Audit;

public sealed record AccessEntry(string Auditor, string User, string Path, string At);

/// <summary>
/// GET /audit/access-log?limit=&amp;before=: who read whose data, newest first (PROTOCOL §12). Auditors only; read as the
/// auditor role, so row security shows it only to a registered auditor.
/// </summary>
public static class AccessLogEndpoint
{
    public const int MaxLimit = 1000;

    [WolverineGet("/audit/access-log"), AuditorsOnly]
    public static async Task<IResult> Get(HttpContext http, CallerSessions sessions)
    {
        var query = http.Request.Query;
        if (!PageLimit.TryRead(query["limit"].ToString(), 100, MaxLimit, out var limit)) return PageLimit.Refusal(MaxLimit);
        long? before = null;
        if (query["before"].ToString() is { Length: > 0 } cursor)
        {
            if (!long.TryParse(cursor, out var id)) return ApiError.BadRequest("before is a cursor this server gave.");
            before = id;
        }

        var auditor = http.User.Id();
        await using var scope = await sessions.ReadAsync(new Caller(auditor, [], Auditor: auditor), http.RequestAborted);
        var read = new NpgsqlBatchCommand(
            $"select id, auditor, user_id, path, at from {MartenSetup.Schema}.audit_access where ($1::bigint is null or id < $1) order by id desc limit {limit}")
        {
            Parameters = { new NpgsqlParameter { NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Bigint, Value = (object?)before ?? DBNull.Value } },
        };
        var entries = new List<(long Id, AccessEntry Entry)>();
        await using (var reader = await scope.ExecuteAsync([read], http.RequestAborted))
            while (await reader.ReadAsync(http.RequestAborted))
                entries.Add((reader.GetInt64(0), new AccessEntry(reader.GetString(1), reader.GetString(2), reader.GetString(3),
                    Events.Timestamps.Format(reader.GetFieldValue<DateTimeOffset>(4)))));
        return Results.Json(new
        {
            entries = entries.Select(entry => entry.Entry),
            nextCursor = entries.Count == limit ? entries[^1].Id.ToString() : null,
        }, WireJson.Options);
    }
}
