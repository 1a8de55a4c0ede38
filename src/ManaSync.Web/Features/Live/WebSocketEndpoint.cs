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
    public static Task AllApps(HttpContext http, WebSocketSession.Services services, IHostApplicationLifetime lifetime) =>
        RunAsync(http, null, services, lifetime);

    [AllowAnonymous]
    [WolverineGet("/ws/{appId}")]
    public static Task OneApp(string appId, HttpContext http, WebSocketSession.Services services, IHostApplicationLifetime lifetime) =>
        AppId.IsValid(appId) ? RunAsync(http, appId, services, lifetime) : ApiError.BadRequest(AppId.Rule).ExecuteAsync(http);

    private static async Task RunAsync(HttpContext http, string? appId, WebSocketSession.Services services,
        IHostApplicationLifetime lifetime)
    {
        if (!http.WebSockets.IsWebSocketRequest)
        {
            await ApiError.BadRequest("This endpoint speaks WebSocket only.").ExecuteAsync(http);
            return;
        }
        using var socket = await http.WebSockets.AcceptWebSocketAsync();
        using var ending = CancellationTokenSource.CreateLinkedTokenSource(http.RequestAborted, lifetime.ApplicationStopping);
        await new WebSocketSession(socket, appId, services).RunAsync(ending.Token);
    }
}
