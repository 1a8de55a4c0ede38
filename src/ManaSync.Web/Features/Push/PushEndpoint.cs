using ManaSync.Events.Upcasting;
using ManaSync.Web.Auth;
using ManaSync.Web.Configuration;
using ManaSync.Web.Features.Metrics;
using ManaSync.Web.Features.Tenancy;
using ManaSync.Web.Features.Sync;
using ManaSync.Web.Infrastructure;
using ManaSync.Web.Infrastructure.Isolation;
using Microsoft.AspNetCore.Mvc;
using Wolverine.Http;

namespace ManaSync.Web.Features.Push;

/// <summary>POST /sync/{appId}: store a batch of changes atomically, answer with what others changed.</summary>
public static class PushEndpoint
{
    public const int ServerChangesLimit = 1000;

    [WolverinePost("/sync/{appId}")]
    [ProducesResponseType<SyncResponse>(StatusCodes.Status200OK)]
    [ProducesResponseType<ApiError>(StatusCodes.Status400BadRequest)]
    [ProducesResponseType<ApiError>(StatusCodes.Status401Unauthorized)]
    [ProducesResponseType<ApiError>(StatusCodes.Status402PaymentRequired)]
    [ProducesResponseType<ApiError>(StatusCodes.Status403Forbidden)]
    [ProducesResponseType<ApiError>(StatusCodes.Status409Conflict)]
    [ProducesResponseType<ApiError>(StatusCodes.Status413PayloadTooLarge)]
    [ProducesResponseType<ApiError>(StatusCodes.Status503ServiceUnavailable)]
    public static async Task<IResult> Post(string appId, HttpContext http, CallerSessions sessions,
        BillingGate billing, Memberships memberships, ChangeUpcasting upcasting, ServerSettings settings, TimeProvider time,
        CancellationToken cancellation)
    {
        if (!AppId.IsValid(appId)) return ApiError.BadRequest(AppId.Rule);
        if (await billing.RefuseAsync(http.User.Id(), appId, cancellation) is { } unpaid) return unpaid;
        if (await RequestBody.ReadAsync(http.Request, cancellation) is not { } body)
            return ApiError.PayloadTooLarge($"The body is larger than {RequestBody.MaxBytes} bytes; split the batch.");

        var (batch, fault) = PushValidation.Read(body, http.Request.Headers["X-Client-Id"].ToString(), upcasting.CurrentVersion);
        if (fault is not null) return ApiError.BadRequest(fault.Message, fault.Index);
        if (!Cursor.TryRead(batch!.Since, out var since))
            return ApiError.BadRequest("since is not a cursor this server issued.");

        var (caller, spacesKnown) = await memberships.CallerAsync(http.User, cancellation);
        if (PushAccess.Check(batch, caller, spacesKnown) is { } denied) return denied;

        var userId = caller.UserId;
        var now = time.GetUtcNow();
        var outcome = await PushStore.StoreAsync(sessions, caller, batch,
            commitTx => new PushContext(userId, appId, batch.ClientId, now, settings.MaxClockSkew, commitTx, upcasting, caller.Scopes, spacesKnown),
            time, cancellation);
        if (outcome.Clash is { } clash) return ApiError.Conflict(clash.Message, clash.Index);
        if (outcome.Unplaced is { } unplaced)
            return new ApiError("membership_unavailable", unplaced.Message, unplaced.Index).ToResult(StatusCodes.Status503ServiceUnavailable);
        SyncMetrics.Pushed(batch.Changes.Count, outcome);

        await using var query = await sessions.ReadAsync(caller, cancellation);
        var page = await ChangeFeed.ReadAsync(query.Session,
            new FeedRequest(caller.Scopes, appId, null, since, batch.ClientId, ServerChangesLimit), cancellation);
        return Results.Json(
            new SyncResponse(page.Changes, outcome.Conflicts, page.NextToken, page.HasMore ? true : null),
            WireJson.Options);
    }
}
