using ManaSync.Web.Features.Sync;
using ManaSync.Web.Infrastructure;
using ManaSync.Web.Infrastructure.Isolation;
using ManaSync.Web.Infrastructure.Preamble;
using Microsoft.AspNetCore.Mvc;
using Wolverine.Http;

namespace ManaSync.Web.Features.Pull;

/// <summary>GET /sync/{appId}/pull: one page of a table's changes since a cursor, compacted per record.</summary>
public static class PullEndpoint
{
    [WolverineGet("/sync/{appId}/pull"), BillingGated]
    [ProducesResponseType<SyncResponse>(StatusCodes.Status200OK)]
    [ProducesResponseType<ApiError>(StatusCodes.Status400BadRequest)]
    [ProducesResponseType<ApiError>(StatusCodes.Status401Unauthorized)]
    [ProducesResponseType<ApiError>(StatusCodes.Status402PaymentRequired)]
    public static async Task<IResult> Get(string appId, [NotBody] Caller caller, HttpContext http, CallerSessions sessions,
        CancellationToken cancellation)
    {
        var query = http.Request.Query;
        if (query["collection"].ToString() is not { Length: > 0 } table) return ApiError.BadRequest("collection is required.");
        if (!Cursor.TryRead(query["since"].ToString(), out var since)) return ApiError.BadRequest("since is not a cursor this server issued.");
        if (!PageLimit.TryRead(query["limit"].ToString(), ChangeFeed.DefaultLimit, ChangeFeed.MaxLimit, out var limit))
            return PageLimit.Refusal(ChangeFeed.MaxLimit);

        var clientId = http.Request.Headers["X-Client-Id"].ToString();
        var page = await sessions.ReadFeedAsync(caller,
            new FeedRequest(caller.Scopes, appId, [table], since, clientId.Length > 0 ? clientId : null, limit,
                FromScratch: since.HoldsNothing),
            cancellation);
        return Results.Json(new SyncResponse(page.Changes, [], page.NextToken, page.HasMore ? true : null),
            WireJson.Options);
    }
}
