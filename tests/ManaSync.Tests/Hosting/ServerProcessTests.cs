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
        using var request = new HttpRequestMessage(HttpMethod.Post, "/sync/todo")
        {
            Content = new StreamContent(new ChunkedFiller(11 * 1024 * 1024)),
        };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        request.Headers.TransferEncodingChunked = true;

        using var response = await _server.Client.SendAsync(request);

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
        using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        Assert.Equal("payload_too_large", body.RootElement.GetProperty("error").GetString());
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

    /// <summary>A JSON-looking body of a given size with no Content-Length, so only the server's read limit can stop it.</summary>
    private sealed class ChunkedFiller(long size) : Stream
    {
        private long _sent;
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => _sent; set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count)
        {
            var n = (int)Math.Min(count, size - _sent);
            Array.Fill(buffer, (byte)' ', offset, n);
            if (_sent == 0 && n > 0) buffer[offset] = (byte)'{';
            _sent += n;
            return n;
        }

        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
