using ManaSync.Web.Infrastructure;
using Marten;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Mvc;
using Wolverine.Http;

namespace ManaSync.Web.Features.Health;

public sealed record HealthReport(string Status, string Service, DateTimeOffset Timestamp, int Connections, int Users, string Database);

/// <summary>GET /health: 200 while PostgreSQL answers, 503 "degraded" while it does not.</summary>
public static class HealthEndpoint
{
    public static readonly TimeSpan DatabaseTimeout = TimeSpan.FromSeconds(2);

    [AllowAnonymous]
    [WolverineGet("/health")]
    [ProducesResponseType<HealthReport>(StatusCodes.Status200OK)]
    [ProducesResponseType<HealthReport>(StatusCodes.Status503ServiceUnavailable)]
    public static async Task<IResult> Get(IDocumentStore store, LiveConnections connections, TimeProvider time)
    {
        var databaseOk = await DatabaseAnswersAsync(store);
        var report = new HealthReport(databaseOk ? "ok" : "degraded", "mana-sync", time.GetUtcNow(),
            connections.Connections, connections.Users, databaseOk ? "ok" : "unreachable");
        return Results.Json(report, WireJson.Options,
            statusCode: databaseOk ? StatusCodes.Status200OK : StatusCodes.Status503ServiceUnavailable);
    }

    private static async Task<bool> DatabaseAnswersAsync(IDocumentStore store)
    {
        using var timeout = new CancellationTokenSource(DatabaseTimeout);
        try
        {
            await using var session = store.QuerySession();
            return (await session.QueryAsync<int>("select 1", timeout.Token)).SingleOrDefault() == 1;
        }
        catch (Exception e) when (DatabaseUnavailable.Is(e) || e is OperationCanceledException or InvalidOperationException)
        {
            return false;
        }
    }
}
