using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using ManaSync.Testing;
using Xunit;
using static ManaSync.Testing.Changes;

namespace ManaSync.Tests.Hosting;

/// <summary>The built dll, run directly, on a real Kestrel port.</summary>
public sealed class ServerProcessTests : IAsyncLifetime
{
    private ServerProcess _server = null!;

    public async Task InitializeAsync() => _server = await ServerProcess.StartAsync(await TestCluster.CreateDatabaseAsync());

    public async Task DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task The_built_server_syncs_over_a_real_socket()
    {
        var laptop = await _server.ClientForAsync("alice", "laptop");
        var phone = await _server.ClientForAsync("alice", "phone");

        (await laptop.PushAsync("todo", Batch(Insert("tasks", "t1", new { title = "over TCP" })))).AssertStatus(HttpStatusCode.OK);
        var (changes, _) = await phone.PullAllAsync("todo", "tasks");

        Assert.Equal("over TCP", Assert.Single(changes)["data"]!["title"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_chunked_body_over_10_MiB_is_refused_with_a_json_413()
    {
        var token = await TokenAsync();

        var (status, body) = await PostChunkedAsync("/sync/todo", token, 11 * 1024 * 1024);

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, status);
        using var error = JsonDocument.Parse(body);
        Assert.Equal("payload_too_large", error.RootElement.GetProperty("error").GetString());
        using var health = await _server.Client.GetAsync("/health");
        Assert.Equal(HttpStatusCode.OK, health.StatusCode);
    }

    [Fact]
    public async Task Unknown_routes_and_methods_answer_with_json_errors()
    {
        var token = await TokenAsync();
        using var request = new HttpRequestMessage(HttpMethod.Get, "/nothing/here");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);

        using var response = await _server.Client.SendAsync(request);

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        Assert.Equal("not_found", body.RootElement.GetProperty("error").GetString());
    }

    private async Task<string> TokenAsync()
    {
        using var response = await _server.Client.PostAsync("/dev/token",
            new StringContent("""{"sub":"alice"}""", Encoding.UTF8, "application/json"));
        using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        return body.RootElement.GetProperty("token").GetString()!;
    }

    /// <summary>
    /// Sends a JSON-looking body of the given size with no Content-Length (so only the server's read limit
    /// can stop it) over a raw socket, reading the answer while still sending. The server answers as
    /// soon as the limit is passed and closes the connection on the rest: HttpClient then reports the
    /// broken upload instead of the answer (it did, once in many runs), so the test reads the answer itself.
    /// </summary>
    private async Task<(HttpStatusCode Status, string Body)> PostChunkedAsync(string path, string token, long size)
    {
        var address = _server.Client.BaseAddress!;
        using var tcp = new System.Net.Sockets.TcpClient();
        await tcp.ConnectAsync(address.Host, address.Port);
        var stream = tcp.GetStream();
        var answer = ReadToEndAsync(stream);
        try
        {
            await stream.WriteAsync(Encoding.ASCII.GetBytes(
                $"POST {path} HTTP/1.1\r\nHost: {address.Authority}\r\nAuthorization: Bearer {token}\r\n" +
                "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"));
            var chunk = new byte[64 * 1024];
            Array.Fill(chunk, (byte)' ');
            chunk[0] = (byte)'{';
            for (long sent = 0; sent < size; sent += chunk.Length)
            {
                await stream.WriteAsync(Encoding.ASCII.GetBytes($"{chunk.Length:x}\r\n"));
                await stream.WriteAsync(chunk);
                await stream.WriteAsync("\r\n"u8.ToArray());
                chunk[0] = (byte)' ';
            }
            await stream.WriteAsync("0\r\n\r\n"u8.ToArray());
        }
        catch (IOException)
        {
            // The server stopped reading at its limit and closed the connection: expected.
        }
        return ParseResponse(await answer);
    }

    private static async Task<byte[]> ReadToEndAsync(Stream stream)
    {
        var received = new MemoryStream();
        var buffer = new byte[16 * 1024];
        try
        {
            int read;
            while ((read = await stream.ReadAsync(buffer)) > 0) received.Write(buffer, 0, read);
        }
        catch (IOException)
        {
            // A reset after the answer: what arrived before it is kept.
        }
        return received.ToArray();
    }

    /// <summary>Status and body of one HTTP/1.1 response, its body sent whole or in chunks.</summary>
    private static (HttpStatusCode Status, string Body) ParseResponse(byte[] response)
    {
        var text = Encoding.UTF8.GetString(response);
        var headerEnd = text.IndexOf("\r\n\r\n", StringComparison.Ordinal);
        Assert.True(headerEnd > 0, $"No complete response arrived: '{text}'");
        var head = text[..headerEnd];
        var status = (HttpStatusCode)int.Parse(head.Split(' ')[1]);
        var rest = text[(headerEnd + 4)..];
        if (!head.Contains("Transfer-Encoding: chunked", StringComparison.OrdinalIgnoreCase))
        {
            var length = head.Split("\r\n").Select(line => line.Split(':', 2))
                .Where(header => header[0].Equals("Content-Length", StringComparison.OrdinalIgnoreCase))
                .Select(header => int.Parse(header[1].Trim())).Single();
            return (status, rest[..length]);
        }
        var body = new StringBuilder();
        while (true)
        {
            var sizeEnd = rest.IndexOf("\r\n", StringComparison.Ordinal);
            var chunkSize = Convert.ToInt32(rest[..sizeEnd], 16);
            if (chunkSize == 0) return (status, body.ToString());
            body.Append(rest, sizeEnd + 2, chunkSize);
            rest = rest[(sizeEnd + 2 + chunkSize + 2)..];
        }
    }
}
