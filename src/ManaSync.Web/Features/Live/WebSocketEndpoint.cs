using ManaSync.Web.Auth;
using ManaSync.Web.Features.Sync;
using ManaSync.Web.Infrastructure;
using Microsoft.AspNetCore.Authorization;
using Wolverine.Http;

namespace ManaSync.Web.Features.Live;

/// <summary>
/// GET /ws (every app) and /ws/{appId} (one app): WebSocket notifications. Anonymous at the HTTP
/// level because browsers cannot set headers on a WebSocket: the first message authenticates.
/// </summary>
public static class WebSocketEndpoint
{
    [AllowAnonymous]
    [WolverineGet("/ws")]
    public static Task AllApps(HttpContext http, TokenValidator tokens, LiveHub hub, LiveConnections connections, TimeProvider time) =>
        RunAsync(http, null, tokens, hub, connections, time);

    [AllowAnonymous]
    [WolverineGet("/ws/{appId}")]
    public static Task OneApp(string appId, HttpContext http, TokenValidator tokens, LiveHub hub, LiveConnections connections,
        TimeProvider time) =>
        AppId.IsValid(appId)
            ? RunAsync(http, appId, tokens, hub, connections, time)
            : ApiError.BadRequest(AppId.Rule).ExecuteAsync(http);

    private static async Task RunAsync(HttpContext http, string? appId, TokenValidator tokens, LiveHub hub,
        LiveConnections connections, TimeProvider time)
    {
        if (!http.WebSockets.IsWebSocketRequest)
        {
            await ApiError.BadRequest("This endpoint speaks WebSocket only.").ExecuteAsync(http);
            return;
        }
        using var socket = await http.WebSockets.AcceptWebSocketAsync();
        await new WebSocketSession(socket, appId, tokens, hub, connections, time).RunAsync(http.RequestAborted);
    }
}
