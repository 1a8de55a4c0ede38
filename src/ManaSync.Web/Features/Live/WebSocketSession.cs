using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using System.Threading.Channels;
using ManaSync.Web.Auth;
using ManaSync.Web.Infrastructure;

namespace ManaSync.Web.Features.Live;

/// <summary>
/// One WebSocket: authenticates in-band, answers pings, and tells the client when its data changed
/// ("sync-available") so it pulls. Outgoing messages go through a small bounded queue; a client that
/// lets it fill up is closed rather than buffered without bound.
/// </summary>
public sealed class WebSocketSession(WebSocket socket, string? appId, TokenValidator tokens, LiveHub hub,
    LiveConnections connections, TimeProvider time)
{
    public static readonly TimeSpan AuthTimeout = TimeSpan.FromSeconds(10);
    public const int MaxMessageBytes = 10 * 1024 * 1024;
    private const int OutboxCapacity = 64;

    private readonly Channel<object> _outbox = Channel.CreateBounded<object>(
        new BoundedChannelOptions(OutboxCapacity) { SingleReader = true });

    public async Task RunAsync(CancellationToken cancellation)
    {
        var sending = SendLoopAsync(cancellation);
        try
        {
            var userId = await AuthenticateAsync(cancellation);
            if (userId is null) return;
            using var registration = connections.Open(userId);
            using var subscription = hub.Subscribe(
                commit => commit.UserId == userId && (appId is null || commit.AppId == appId),
                commit =>
                {
                    if (commit is not null && !_outbox.Writer.TryWrite(new SyncAvailable(commit.AppId, commit.Tables)))
                        _outbox.Writer.TryComplete(new SlowConsumerException());
                });
            await ReceiveLoopAsync(cancellation);
        }
        finally
        {
            _outbox.Writer.TryComplete();
            await sending;
        }
    }

    /// <returns>The user, or null when the socket was closed instead.</returns>
    private async Task<string?> AuthenticateAsync(CancellationToken cancellation)
    {
        using var deadline = new CancellationTokenSource(AuthTimeout, time);
        using var either = CancellationTokenSource.CreateLinkedTokenSource(cancellation, deadline.Token);
        while (true)
        {
            JsonElement? message;
            try
            {
                message = await ReceiveAsync(either.Token);
            }
            catch (OperationCanceledException) when (deadline.IsCancellationRequested)
            {
                await CloseAsync(WebSocketCloseStatus.PolicyViolation, "authentication timeout");
                return null;
            }
            if (message is null) return null;

            if (TypeOf(message.Value) != "auth")
            {
                Enqueue(Error("authenticate first: {\"type\":\"auth\",\"token\":\"…\"}"));
                continue;
            }
            var token = message.Value.TryGetProperty("token", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString() : null;
            var principal = token is null ? null : await tokens.ValidateAsync(token, cancellation);
            if (principal is null)
            {
                Enqueue(Error("invalid token"));
                await CloseAsync(WebSocketCloseStatus.PolicyViolation, "invalid token");
                return null;
            }
            Enqueue(new { type = "auth-ok" });
            return principal.Id();
        }
    }

    private async Task ReceiveLoopAsync(CancellationToken cancellation)
    {
        while (await ReceiveAsync(cancellation) is { } message)
        {
            switch (TypeOf(message))
            {
                case "ping":
                    Enqueue(new { type = "pong" });
                    break;
                case "auth":
                    Enqueue(new { type = "auth-ok" });
                    break;
                default:
                    Enqueue(Error("unknown message type"));
                    break;
            }
        }
    }

    /// <returns>The next JSON message, null once the socket is closing; non-JSON gets an error reply.</returns>
    private async Task<JsonElement?> ReceiveAsync(CancellationToken cancellation)
    {
        var buffer = new byte[16 * 1024];
        while (true)
        {
            using var message = new MemoryStream();
            WebSocketReceiveResult result;
            do
            {
                result = await socket.ReceiveAsync(buffer, cancellation);
                if (result.MessageType == WebSocketMessageType.Close)
                {
                    await CloseAsync(WebSocketCloseStatus.NormalClosure, "bye");
                    return null;
                }
                message.Write(buffer, 0, result.Count);
                if (message.Length > MaxMessageBytes)
                {
                    await CloseAsync(WebSocketCloseStatus.MessageTooBig, "messages are limited to 10 MiB");
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

    private async Task SendLoopAsync(CancellationToken cancellation)
    {
        try
        {
            await foreach (var message in _outbox.Reader.ReadAllAsync(cancellation))
            {
                if (socket.State != WebSocketState.Open) break;
                var bytes = JsonSerializer.SerializeToUtf8Bytes(message, WireJson.Options);
                await socket.SendAsync(bytes, WebSocketMessageType.Text, endOfMessage: true, cancellation);
            }
        }
        catch (SlowConsumerException)
        {
            await CloseAsync(WebSocketCloseStatus.PolicyViolation, "too slow to read notifications");
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException)
        {
            // The connection is gone.
        }
    }

    private void Enqueue(object message)
    {
        if (!_outbox.Writer.TryWrite(message)) _outbox.Writer.TryComplete(new SlowConsumerException());
    }

    private async Task CloseAsync(WebSocketCloseStatus status, string reason)
    {
        _outbox.Writer.TryComplete();
        if (socket.State is WebSocketState.Open or WebSocketState.CloseReceived)
        {
            try
            {
                await socket.CloseOutputAsync(status, reason, CancellationToken.None);
            }
            catch (WebSocketException)
            {
            }
        }
    }

    private static string? TypeOf(JsonElement message) =>
        message.ValueKind == JsonValueKind.Object && message.TryGetProperty("type", out var type) &&
        type.ValueKind == JsonValueKind.String
            ? type.GetString()
            : null;

    /// <summary>Old clients read the message from "tables", so it is repeated there.</summary>
    private static object Error(string message) => new { type = "error", message, tables = new[] { message } };

    private sealed record SyncAvailable(string AppId, IReadOnlyList<string> Tables)
    {
        public string Type => "sync-available";
    }
}
