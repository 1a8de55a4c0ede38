using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace ManaSync.Testing;

/// <summary>JSON messages over a WebSocket, as the sync protocol's clients send and read them.</summary>
public static class JsonSockets
{
    public static Task SendJsonAsync(this WebSocket socket, object message) =>
        socket.SendAsync(JsonSerializer.SerializeToUtf8Bytes(message), WebSocketMessageType.Text, true, CancellationToken.None);

    /// <summary>The next text message, however many frames it spans; null when the server closed the socket.</summary>
    public static async Task<JsonObject?> ReceiveJsonAsync(this WebSocket socket, int withinSeconds = 15)
    {
        using var bound = new CancellationTokenSource(TimeSpan.FromSeconds(withinSeconds));
        var buffer = new byte[64 * 1024];
        using var message = new MemoryStream();
        WebSocketReceiveResult result;
        do
        {
            result = await socket.ReceiveAsync(buffer, bound.Token);
            if (result.MessageType == WebSocketMessageType.Close) return null;
            message.Write(buffer, 0, result.Count);
        } while (!result.EndOfMessage);
        return JsonNode.Parse(Encoding.UTF8.GetString(message.ToArray()))!.AsObject();
    }
}
