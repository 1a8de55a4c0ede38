using System.Text;

namespace ManaSync.Web.Features.Live;

/// <summary>
/// Writes server-sent events. Each event is flushed at once; a client that stops reading long enough
/// for a write to time out is a slow consumer, and its stream is dropped (it reconnects and resumes
/// from its cursor) rather than buffered without bound.
/// </summary>
public sealed class SseWriter(HttpResponse response, TimeSpan writeTimeout)
{
    public async Task StartAsync(CancellationToken cancellation)
    {
        response.ContentType = "text/event-stream";
        response.Headers.CacheControl = "no-cache";
        response.Headers["X-Accel-Buffering"] = "no";
        response.HttpContext.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpResponseBodyFeature>()?.DisableBuffering();
        await response.StartAsync(cancellation);
        await response.Body.FlushAsync(cancellation);
    }

    public async Task WriteAsync(string eventName, string data, string? id, CancellationToken cancellation)
    {
        var frame = new StringBuilder();
        if (id is not null) frame.Append("id: ").Append(id).Append('\n');
        frame.Append("event: ").Append(eventName).Append('\n');
        frame.Append("data: ").Append(data).Append("\n\n");

        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
        timeout.CancelAfter(writeTimeout);
        try
        {
            await response.WriteAsync(frame.ToString(), timeout.Token);
            await response.Body.FlushAsync(timeout.Token);
        }
        catch (OperationCanceledException) when (!cancellation.IsCancellationRequested)
        {
            throw new SlowConsumerException();
        }
    }
}

public sealed class SlowConsumerException() : Exception("The client did not read its stream in time.");
