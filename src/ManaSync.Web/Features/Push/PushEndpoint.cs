using ManaSync.Events.Upcasting;
using ManaSync.Web.Configuration;
using ManaSync.Web.Features.Metrics;
using ManaSync.Web.Features.Sync;
using ManaSync.Web.Features.WritePath;
using ManaSync.Web.Infrastructure;
using ManaSync.Web.Infrastructure.Isolation;
using ManaSync.Web.Infrastructure.Preamble;
using ManaSync.Web.Infrastructure.Sharding;
using Microsoft.AspNetCore.Mvc;
using Wolverine.Http;

namespace ManaSync.Web.Features.Push;

/// <summary>POST /sync/{appId}: store a batch of changes atomically, answer with what others changed.</summary>
public static class PushEndpoint
{
    public const int ServerChangesLimit = 1000;

    [WolverinePost("/sync/{appId}"), BillingGated]
    [ProducesResponseType<SyncResponse>(StatusCodes.Status200OK)]
    [ProducesResponseType<ApiError>(StatusCodes.Status400BadRequest)]
    [ProducesResponseType<ApiError>(StatusCodes.Status401Unauthorized)]
    [ProducesResponseType<ApiError>(StatusCodes.Status402PaymentRequired)]
    [ProducesResponseType<ApiError>(StatusCodes.Status403Forbidden)]
    [ProducesResponseType<ApiError>(StatusCodes.Status409Conflict)]
    [ProducesResponseType<ApiError>(StatusCodes.Status413PayloadTooLarge)]
    [ProducesResponseType<ApiError>(StatusCodes.Status503ServiceUnavailable)]
    public static async Task<IResult> Post(string appId, [NotBody] Caller caller, HttpContext http, CallerSessions sessions,
        ShardDatabases databases, ChangeUpcasting upcasting, ServerSettings settings, TimeProvider time, CancellationToken cancellation)
    {
        if (await RequestBody.ReadAsync(http.Request, cancellation) is not { } body)
            return ApiError.PayloadTooLarge($"The body is larger than {RequestBody.MaxBytes} bytes; split the batch.");

        var origin = new PushOrigin(caller.UserId, appId, http.Request.Headers["X-Client-Id"].ToString(), time.GetUtcNow());
        var (batch, fault) = PushValidation.Read(body, origin, upcasting.CurrentVersion);
        if (fault is not null) return ApiError.BadRequest(fault.Message, fault.Index);
        if (!Cursor.TryRead(batch!.Since, out var since))
            return ApiError.BadRequest("since is not a cursor this server issued.");

        var outcome = await ShardedWrite.StoreBatchAsync(sessions, databases, caller, batch.Changes,
            shard => new WriteRequest(cancel => sessions.WriteAsync(caller, cancel, shard), _ => caller, upcasting, settings.MaxClockSkew, time,
                ReportConflicts: true),
            cancellation);
        if (outcome.Refusal is { } refusal) return refusal.ToResult();
        SyncMetrics.Pushed(batch.Changes.Count, outcome);

        var page = await sessions.ReadFeedAsync(caller,
            new FeedRequest(caller.Scopes, appId, null, since, batch.ClientId, ServerChangesLimit), cancellation);
        return Results.Json(
            new SyncResponse(page.Changes, outcome.Conflicts, page.NextToken, page.HasMore ? true : null),
            WireJson.Options);
    }
}
