using ManaSync.Web.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace ManaSync.Testing;

/// <summary>An OTLP/HTTP endpoint standing in for a collector: answers 200 and keeps each request's path, content type and body.</summary>
public sealed class OtlpReceiver : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly List<(string Path, string? ContentType, byte[] Body)> _received = [];

    private OtlpReceiver(WebApplication app, string url) => (_app, Url) = (app, url);

    public string Url { get; }

    public IReadOnlyList<(string Path, string? ContentType, byte[] Body)> Received
    {
        get { lock (_received) return [.. _received]; }
    }

    /// <summary>The total size of the bodies received, for a report.</summary>
    public long Bytes => Interlocked.Read(ref _bytes);

    private long _bytes;

    /// <param name="keep">Whether to keep the bodies (a test reads them) or only their sizes (a benchmark).</param>
    public static async Task<OtlpReceiver> StartAsync(bool keep = true)
    {
        var port = LoopbackPort.Free();
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls($"http://127.0.0.1:{port}");
        builder.Logging.ClearProviders();
        var app = builder.Build();
        var receiver = new OtlpReceiver(app, $"http://127.0.0.1:{port}");
        app.Run(async http =>
        {
            using var body = new MemoryStream();
            await http.Request.Body.CopyToAsync(body);
            Interlocked.Add(ref receiver._bytes, body.Length);
            lock (receiver._received) receiver._received.Add((http.Request.Path, http.Request.ContentType, keep ? body.ToArray() : []));
            http.Response.StatusCode = StatusCodes.Status200OK;
        });
        await app.StartAsync();
        return receiver;
    }

    public async ValueTask DisposeAsync() => await _app.DisposeAsync();
}
