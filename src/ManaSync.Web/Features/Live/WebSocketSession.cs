using System.Diagnostics;
using System.Net.WebSockets;
using System.Text.Json;
using System.Threading.Channels;
using ManaSync.Web.Auth;
using ManaSync.Web.Features.Tenancy;
using ManaSync.Web.Infrastructure;
using ManaSync.Web.Infrastructure.Tracing;

namespace ManaSync.Web.Features.Live;

/// <summary>
/// One WebSocket: authenticates in-band, answers pings, and tells the client when its data changed
/// ("sync-available") so it pulls. Everything outgoing, the closing frame included, goes through one
/// small bounded queue in order; a client that lets it fill up is closed rather than buffered
/// without bound.
/// </summary>
public sealed class WebSocketSession(WebSocket socket, string? appId, WebSocketSession.Services services)
{
    /// <summary>What every session needs from the host.</summary>
    public sealed record Services(TokenValidator Tokens, Memberships Memberships, LiveHub Hub, LiveConnections Connections,
        TimeProvider Time, TraceNode Node);

    public static readonly TimeSpan AuthTimeout = TimeSpan.FromSeconds(10);
    public const int MaxMessageBytes = 10 * 1024 * 1024;
    private const int OutboxCapacity = 64;
    private static readonly TimeSpan CloseHandshakeTimeout = TimeSpan.FromSeconds(2);

    private readonly Channel<Outgoing> _outbox = Channel.CreateBounded<Outgoing>(
        new BoundedChannelOptions(OutboxCapacity) { SingleReader = true });
    private volatile bool _overflowed;

    /// <summary>The socket's own span (its upgrade request's), which every delivery links to.</summary>
    private readonly ActivityContext? _connection = Activity.Current?.Context;

    public async Task RunAsync(CancellationToken cancellation)
    {
        var sending = SendLoopAsync(cancellation);
        var user = await AuthenticateAsync(cancellation);
        if (user is not null)
        {
            var caller = await services.Memberships.CallerAsync(user, cancellation);
            using var registration = services.Connections.Open(caller.UserId);
            using var subscription = services.Hub.Subscribe(caller.Scopes,
                commit => (appId is null || commit.AppId == appId) &&
                          (commit.UserId == caller.UserId || commit.Scopes.Intersect(caller.Scopes).Any()),
                commit =>
                {
                    if (commit is not null)
                        Enqueue(new Message(new { type = "sync-available", appId = commit.AppId, tables = commit.Tables }, LiveCause.Of(commit)));
                    // Commits may have gone unheard (the change listener lost its connection, e.g. in a failover):
                    // a socket of one app is told to pull. One of all apps cannot be told which app to pull.
                    else if (appId is not null)
                        Enqueue(new Message(new { type = "sync-available", appId, tables = Array.Empty<string>() }));
                });
            await ReceiveLoopAsync(cancellation);
        }
        _outbox.Writer.TryComplete();
        await sending;
    }

    /// <returns>The user, or null when the socket is being closed instead.</returns>
    private async Task<System.Security.Claims.ClaimsPrincipal?> AuthenticateAsync(CancellationToken cancellation)
    {
        // Cancelling a pending receive would abort the socket, so the deadline races it instead.
        var deadline = Task.Delay(AuthTimeout, services.Time, cancellation);
        while (true)
        {
            var receiving = ReceiveAsync(cancellation);
            if (await Task.WhenAny(receiving, deadline) == deadline)
            {
                Close(WebSocketCloseStatus.PolicyViolation, "authentication timeout");
                await Task.WhenAny(receiving, Task.Delay(CloseHandshakeTimeout, services.Time, CancellationToken.None));
                return null;
            }
            if (await receiving is not { } message) return null;

            if (TypeOf(message) != "auth")
            {
                Enqueue(Error("authenticate first: {\"type\":\"auth\",\"token\":\"…\"}"));
                continue;
            }
            var token = message.TryGetProperty("token", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString() : null;
            var principal = token is null ? null : await services.Tokens.ValidateAsync(token, cancellation);
            if (principal is null)
            {
                Enqueue(Error("invalid token"));
                Close(WebSocketCloseStatus.PolicyViolation, "invalid token");
                return null;
            }
            Enqueue(new Message(new { type = "auth-ok" }));
            return principal;
        }
    }

    private async Task ReceiveLoopAsync(CancellationToken cancellation)
    {
        while (await ReceiveAsync(cancellation) is { } message)
        {
            Enqueue(TypeOf(message) switch
            {
                "ping" => new Message(new { type = "pong" }),
                "auth" => new Message(new { type = "auth-ok" }),
                _ => Error("unknown message type"),
            });
        }
    }

    /// <returns>The next JSON message; null once the socket closes (non-JSON gets an error reply).</returns>
    private async Task<JsonElement?> ReceiveAsync(CancellationToken cancellation)
    {
        var buffer = new byte[16 * 1024];
        try
        {
            while (true)
            {
                using var message = new MemoryStream();
                WebSocketReceiveResult result;
                do
                {
                    result = await socket.ReceiveAsync(buffer, cancellation);
                    if (result.MessageType == WebSocketMessageType.Close)
                    {
                        Close(WebSocketCloseStatus.NormalClosure, "bye");
                        return null;
                    }
                    message.Write(buffer, 0, result.Count);
                    if (message.Length > MaxMessageBytes)
                    {
                        Close(WebSocketCloseStatus.MessageTooBig, "messages are limited to 10 MiB");
                        return null;
                    }
                } while (!result.EndOfMessage);

                try
                {
                    using var document = JsonDocument.Parse(message.GetBuffer().AsMemory(0, (int)message.Length));
                    return document.RootElement.Clone();
                }
                catch (JsonException)
                {
                    Enqueue(Error("messages must be JSON objects with a type"));
                }
            }
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException)
        {
            return null;
        }
    }

    private async Task SendLoopAsync(CancellationToken cancellation)
    {
        try
        {
            await foreach (var item in _outbox.Reader.ReadAllAsync(cancellation))
            {
                switch (item)
                {
                    case Message { Payload: var payload, Cause: var cause } when socket.State == WebSocketState.Open:
                        using (LiveCause.StartDelivery(cause is { } known ? [known] : [], "websocket", services.Node, _connection))
                        {
                            var bytes = JsonSerializer.SerializeToUtf8Bytes(payload, WireJson.Options);
                            await socket.SendAsync(bytes, WebSocketMessageType.Text, endOfMessage: true, cancellation);
                        }
                        break;
                    case Closing closing:
                        await CloseOutputAsync(closing.Status, closing.Reason);
                        return;
                }
            }
            if (_overflowed) await CloseOutputAsync(WebSocketCloseStatus.PolicyViolation, "too slow to read messages");
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException)
        {
            // The connection is gone.
        }
    }

    private async Task CloseOutputAsync(WebSocketCloseStatus status, string reason)
    {
        if (socket.State is WebSocketState.Open or WebSocketState.CloseReceived)
            await socket.CloseOutputAsync(status, reason, CancellationToken.None);
    }

    private void Close(WebSocketCloseStatus status, string reason)
    {
        Enqueue(new Closing(status, reason));
        _outbox.Writer.TryComplete();
    }

    private void Enqueue(Outgoing item)
    {
        if (_outbox.Writer.TryWrite(item)) return;
        _overflowed = true;
        _outbox.Writer.TryComplete();
    }

    private static string? TypeOf(JsonElement message) =>
        message.ValueKind == JsonValueKind.Object && message.TryGetProperty("type", out var type) &&
        type.ValueKind == JsonValueKind.String
            ? type.GetString()
            : null;

    /// <summary>Old clients read the message from "tables", so it is repeated there.</summary>
    private static Message Error(string message) => new(new { type = "error", message, tables = new[] { message } });

    private abstract record Outgoing;

    /// <param name="Cause">The commit that made it, when traced: its sending is a delivery span.</param>
    private sealed record Message(object Payload, LiveCause? Cause = null) : Outgoing;

    private sealed record Closing(WebSocketCloseStatus Status, string Reason) : Outgoing;
}
