using System.Net;
using System.Net.WebSockets;
using ManaSync.Testing;
using Xunit;
using static ManaSync.Testing.Changes;

namespace ManaSync.Tests.Live;

[Collection(LiveCollection.Name)]
public sealed class WebSocketTests(LiveFixture live)
{
    private static string NewUser() => UniqueIds.New("user");

    private static async Task<ClientWebSocket> ConnectAsync(ServerProcess node, string path)
    {
        var socket = new ClientWebSocket();
        var uri = new UriBuilder(node.BaseAddress) { Scheme = "ws", Path = path }.Uri;
        await socket.ConnectAsync(uri, CancellationToken.None);
        return socket;
    }

    private async Task<ClientWebSocket> AuthenticatedAsync(ServerProcess node, string path, string user)
    {
        var socket = await ConnectAsync(node, path);
        await socket.SendJsonAsync(new { type = "auth", token = live.Token(user) });
        Assert.Equal("auth-ok", (await socket.ReceiveJsonAsync())!["type"]!.GetValue<string>());
        return socket;
    }

    [Fact]
    public async Task Auth_then_ping_pong()
    {
        using var socket = await AuthenticatedAsync(live.Node1, "/ws", NewUser());

        await socket.SendJsonAsync(new { type = "ping" });

        Assert.Equal("pong", (await socket.ReceiveJsonAsync())!["type"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_push_tells_the_users_sockets_on_every_node_that_a_sync_is_available()
    {
        var user = NewUser();
        using var allApps = await AuthenticatedAsync(live.Node2, "/ws", user);
        using var thisApp = await AuthenticatedAsync(live.Node1, "/ws/todo", user);
        using var otherApp = await AuthenticatedAsync(live.Node1, "/ws/notes-app", user);
        using var otherUser = await AuthenticatedAsync(live.Node1, "/ws", NewUser());

        (await live.Node1.ClientWithToken(live.Token(user)).PushAsync("todo", Batch(Insert("tasks", "t1", new { }))))
            .AssertStatus(HttpStatusCode.OK);
        var first = await allApps.ReceiveJsonAsync();
        var second = await thisApp.ReceiveJsonAsync();
        await otherApp.SendJsonAsync(new { type = "ping" });
        await otherUser.SendJsonAsync(new { type = "ping" });

        foreach (var message in new[] { first, second })
        {
            Assert.Equal("sync-available", message!["type"]!.GetValue<string>());
            Assert.Equal("todo", message["appId"]!.GetValue<string>());
            Assert.Equal(["tasks"], message["tables"]!.AsArray().Select(t => t!.GetValue<string>()));
        }
        // The first message the others get is the pong: no notification came before it.
        Assert.Equal("pong", (await otherApp.ReceiveJsonAsync())!["type"]!.GetValue<string>());
        Assert.Equal("pong", (await otherUser.ReceiveJsonAsync())!["type"]!.GetValue<string>());
    }

    [Fact]
    public async Task An_invalid_token_gets_an_error_and_a_policy_violation_close()
    {
        using var socket = await ConnectAsync(live.Node1, "/ws");

        await socket.SendJsonAsync(new { type = "auth", token = "not-a-token" });
        var error = await socket.ReceiveJsonAsync();
        var closed = await socket.ReceiveJsonAsync();

        Assert.Equal("error", error!["type"]!.GetValue<string>());
        Assert.Equal(error["message"]!.GetValue<string>(), error["tables"]![0]!.GetValue<string>());
        Assert.Null(closed);
        Assert.Equal(WebSocketCloseStatus.PolicyViolation, socket.CloseStatus);
    }

    [Fact]
    public async Task A_silent_socket_is_closed_after_10_s_without_auth()
    {
        using var socket = await ConnectAsync(live.Node1, "/ws");

        var closed = await socket.ReceiveJsonAsync(withinSeconds: 20);

        Assert.Null(closed);
        Assert.Equal(WebSocketCloseStatus.PolicyViolation, socket.CloseStatus);
    }

    [Fact]
    public async Task A_message_over_10_MiB_closes_the_socket()
    {
        using var socket = await AuthenticatedAsync(live.Node1, "/ws", NewUser());

        var chunk = new byte[1024 * 1024];
        try
        {
            for (var i = 0; i < 11; i++)
                await socket.SendAsync(chunk, WebSocketMessageType.Text, endOfMessage: false, CancellationToken.None);
        }
        catch (WebSocketException)
        {
            // The server may close while we are still sending.
        }
        var closed = await socket.ReceiveJsonAsync();

        Assert.Null(closed);
        Assert.Equal(WebSocketCloseStatus.MessageTooBig, socket.CloseStatus);
    }

    [Fact]
    public async Task Unknown_messages_get_an_error_in_both_fields()
    {
        using var socket = await AuthenticatedAsync(live.Node1, "/ws", NewUser());

        await socket.SendJsonAsync(new { type = "dance" });
        var error = await socket.ReceiveJsonAsync();

        Assert.Equal("error", error!["type"]!.GetValue<string>());
        Assert.Equal([error["message"]!.GetValue<string>()], error["tables"]!.AsArray().Select(t => t!.GetValue<string>()));
    }
}
