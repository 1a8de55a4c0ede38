using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using System.Threading.Channels;

namespace ManaSync.Testing;

/// <summary>One parsed server-sent event.</summary>
public sealed record SseEvent(string? Id, string Event, string Data)
{
    public JsonObject Json => JsonNode.Parse(Data)!.AsObject();
}

/// <summary>An open SSE stream read with a raw HttpClient over a real socket; events are parsed from the raw bytes.</summary>
public sealed class SseStream : IAsyncDisposable
{
    private readonly HttpResponseMessage _response;
    private readonly CancellationTokenSource _stop = new();
    private readonly Channel<SseEvent> _events = Channel.CreateUnbounded<SseEvent>();
    private readonly StringBuilder _raw = new();
    private readonly Task _reading;

    private SseStream(HttpResponseMessage response)
    {
        _response = response;
        _reading = ReadAsync();
    }

    public HttpResponseMessage Response => _response;
    public string Raw { get { lock (_raw) return _raw.ToString(); } }
    public bool Ended => _reading.IsCompleted;

    public static async Task<SseStream> OpenAsync(HttpClient http, string path, string token, string? lastEventId = null)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, path);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        if (lastEventId is not null) request.Headers.Add("Last-Event-ID", lastEventId);
        var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        return new SseStream(response);
    }

    /// <summary>The next event of the given kind, skipping others (heartbeats, say); fails after the bound.</summary>
    public async Task<SseEvent> NextAsync(string eventName = "changes", int withinSeconds = 20)
    {
        using var bound = new CancellationTokenSource(TimeSpan.FromSeconds(withinSeconds));
        while (true)
        {
            var next = await _events.Reader.ReadAsync(bound.Token);
            if (next.Event == eventName) return next;
        }
    }

    /// <summary>Changes events until <paramref name="count"/> changes arrived.</summary>
    public async Task<List<SseEvent>> ChangesAsync(int count, int withinSeconds = 30)
    {
        var events = new List<SseEvent>();
        var received = 0;
        while (received < count)
        {
            var next = await NextAsync("changes", withinSeconds);
            events.Add(next);
            received += next.Json["changes"]!.AsArray().Count;
        }
        return events;
    }

    public async Task<bool> EndsWithinAsync(int seconds)
    {
        await Task.WhenAny(_reading, Task.Delay(TimeSpan.FromSeconds(seconds)));
        return _reading.IsCompleted;
    }

    private async Task ReadAsync()
    {
        try
        {
            await using var body = await _response.Content.ReadAsStreamAsync(_stop.Token);
            using var reader = new StreamReader(body, Encoding.UTF8);
            string? id = null, name = null;
            var data = new StringBuilder();
            while (await reader.ReadLineAsync(_stop.Token) is { } line)
            {
                lock (_raw) _raw.Append(line).Append('\n');
                if (line.Length == 0)
                {
                    if (name is not null) _events.Writer.TryWrite(new SseEvent(id, name, data.ToString()));
                    (id, name) = (null, null);
                    data.Clear();
                }
                else if (line.StartsWith("id: ")) id = line[4..];
                else if (line.StartsWith("event: ")) name = line[7..];
                else if (line.StartsWith("data: ")) data.Append(line[6..]);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or HttpRequestException)
        {
        }
        finally
        {
            _events.Writer.TryComplete();
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _response.Dispose();
        await _reading;
        _stop.Dispose();
    }
}
