using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace ManaSync.Testing;

/// <summary>One device of one user, talking to the server as a Dexie client would.</summary>
public sealed class SyncClient(HttpClient http, string token, string? clientId)
{
    public string Token => token;

    public async Task<Reply> PushAsync(string appId, object body) =>
        await PushRawAsync(appId, Encoding.UTF8.GetBytes(body as string ?? JsonSerializer.Serialize(body)));

    public async Task<Reply> PushRawAsync(string appId, byte[] body)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, $"/sync/{appId}") { Content = new ByteArrayContent(body) };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        return await SendAsync(request);
    }

    public async Task<Reply> PullAsync(string appId, string collection, string? since = null, int? limit = null)
    {
        var query = $"/sync/{appId}/pull?collection={Uri.EscapeDataString(collection)}";
        if (since is not null) query += "&since=" + Uri.EscapeDataString(since);
        if (limit is not null) query += "&limit=" + limit;
        return await SendAsync(new HttpRequestMessage(HttpMethod.Get, query));
    }

    /// <summary>Pulls page after page until the server says there is no more.</summary>
    public async Task<(List<JsonObject> Changes, string Cursor)> PullAllAsync(string appId, string collection, string? since = null)
    {
        var changes = new List<JsonObject>();
        while (true)
        {
            var reply = await PullAsync(appId, collection, since);
            reply.AssertStatus(HttpStatusCode.OK);
            changes.AddRange(reply.Changes);
            since = reply.Cursor;
            if (!reply.HasMore) return (changes, since);
        }
    }

    public Task<Reply> SendRawAsync(HttpMethod method, string path) => SendAsync(new HttpRequestMessage(method, path));

    private async Task<Reply> SendAsync(HttpRequestMessage request)
    {
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        if (clientId is not null) request.Headers.Add("X-Client-Id", clientId);
        using var response = await http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        return new Reply(response.StatusCode, text);
    }
}

public sealed record Reply(HttpStatusCode Status, string Text)
{
    /// <summary>A cursor token: a time in whole seconds, then the position (PROTOCOL §5).</summary>
    public const string CursorPattern = @"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z_\d{20}_\d{10}";

    public JsonObject Json => JsonNode.Parse(Text)!.AsObject();

    public List<JsonObject> Changes => Json["serverChanges"]!.AsArray().Select(change => change!.AsObject()).ToList();

    public List<JsonObject> Conflicts => Json["conflicts"]!.AsArray().Select(conflict => conflict!.AsObject()).ToList();

    public string Cursor => Json["syncedUntil"]!.GetValue<string>();

    public bool HasMore => Json["hasMore"]?.GetValue<bool>() ?? false;

    public Reply AssertStatus(HttpStatusCode expected)
    {
        if (Status != expected) throw new UnexpectedStatusException($"Expected {(int)expected}, got {(int)Status}: {Text}");
        return this;
    }
}

public sealed class UnexpectedStatusException(string message) : Exception(message);
