using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using ManaSync.Testing;
using Xunit;

namespace ManaSync.Tests.Tenancy;

/// <summary>
/// Every endpoint answers the same situation the same way, because one preamble (appId, caller and
/// memberships, billing) runs before each of them. A request that passes the preamble gets the endpoint's
/// own answer: 200, or for the audit of a record nobody wrote, 404.
/// </summary>
[Collection(TenancyCollection.Name)]
public sealed class RequestPreambleTests(TenancyFixture app)
{
    public static TheoryData<string, string, int> Situations() => new()
    {
        // The auth service is down: reads fall back to the caller's own rows; a write into a space waits (503).
        { "auth service down", "push", 503 }, { "auth service down", "pull", 200 }, { "auth service down", "stream", 200 },
        { "auth service down", "import", 503 }, { "auth service down", "audit", 404 },
        // The credits service is down: sync fails open.
        { "billing service down", "push", 200 }, { "billing service down", "pull", 200 }, { "billing service down", "stream", 200 },
        { "billing service down", "import", 200 }, { "billing service down", "audit", 404 },
        // Sync needs a subscription; taking data out or putting it back, and auditing it, never do.
        { "subscription inactive", "push", 402 }, { "subscription inactive", "pull", 402 }, { "subscription inactive", "stream", 402 },
        { "subscription inactive", "import", 200 }, { "subscription inactive", "audit", 404 },
        // An app id the server cannot use (import names apps inside the archive, where a bad one is a bad archive).
        { "bad appId", "push", 400 }, { "bad appId", "pull", 400 }, { "bad appId", "stream", 400 },
        { "bad appId", "import", 400 }, { "bad appId", "audit", 400 },
        // Writing into a space of which the caller is not a member; reading it shows nothing of it.
        { "not a member", "push", 403 }, { "not a member", "pull", 200 }, { "not a member", "stream", 200 },
        { "not a member", "import", 403 }, { "not a member", "audit", 404 },
    };

    [Theory]
    [MemberData(nameof(Situations))]
    public async Task Every_endpoint_answers_a_situation_alike(string situation, string endpoint, int expected)
    {
        // Fresh ids: memberships and billing answers are cached per user.
        var (user, space) = (UniqueIds.New("user"), UniqueIds.New("org"));
        var appId = situation == "bad appId" ? "bad app!" : "todo";
        app.Services.Spaces[user] = [];
        if (situation == "subscription inactive") app.Services.Inactive[user] = true;
        app.Services.AuthDown = situation == "auth service down";
        app.Services.CreditsDown = situation == "billing service down";
        try
        {
            var (status, retryAfter) = await SendAsync(endpoint, user, appId, situation is "auth service down" or "not a member" ? space : null);
            Assert.Equal(expected, (int)status);
            // A 503 says when to retry; nothing else does.
            Assert.Equal(expected == 503, retryAfter);
        }
        finally
        {
            (app.Services.AuthDown, app.Services.CreditsDown) = (false, false);
        }
    }

    /// <param name="spaceId">A space the request writes into, if any.</param>
    private async Task<(HttpStatusCode Status, bool RetryAfter)> SendAsync(string endpoint, string user, string appId, string? spaceId)
    {
        var path = Uri.EscapeDataString(appId);
        using var request = endpoint switch
        {
            "push" => new HttpRequestMessage(HttpMethod.Post, $"/sync/{path}")
            {
                Content = new StringContent($$$"""{"changes":[{"table":"tasks","id":"r1","op":"insert","data":{"title":"x"{{{Space(spaceId)}}}}}]}""",
                    Encoding.UTF8, "application/json"),
            },
            "pull" => new HttpRequestMessage(HttpMethod.Get, $"/sync/{path}/pull?collection=tasks"),
            "stream" => new HttpRequestMessage(HttpMethod.Get, $"/sync/{path}/stream?collections=tasks"),
            "import" => new HttpRequestMessage(HttpMethod.Post, "/backup/import") { Content = new ByteArrayContent(Archive(user, appId, spaceId)) },
            "audit" => new HttpRequestMessage(HttpMethod.Get, $"/audit/{path}/tasks/r1/history"),
            _ => throw new ArgumentOutOfRangeException(nameof(endpoint)),
        };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", app.TokenFor(user));
        // A stream that is let through stays open: its status is all this needs.
        using var response = await app.Client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        return (response.StatusCode, response.Headers.RetryAfter is not null);
    }

    private static string Space(string? spaceId) => spaceId is null ? "" : $",\"spaceId\":\"{spaceId}\"";

    /// <summary>A .mana archive of one insert by the user.</summary>
    private static byte[] Archive(string user, string appId, string? spaceId)
    {
        var line = Encoding.UTF8.GetBytes($$"""{"eventId":"{{Guid.NewGuid()}}","schemaVersion":1,"appId":"{{appId}}","table":"tasks","id":"r1","op":"insert","data":{"title":"x"}{{Space(spaceId)}},"clientId":"laptop","createdAt":"2026-01-01T00:00:00.000Z"}""" + "\n");
        var manifest = $$"""{"formatVersion":1,"schemaVersion":1,"userId":"{{user}}","createdAt":"2026-01-01T00:00:00.000Z","eventCount":1,"eventsSha256":"{{Convert.ToHexStringLower(SHA256.HashData(line))}}","apps":["{{appId}}"],"producedBy":"mana-sync"}""";
        return ManaArchives.Build(line, manifest);
    }
}
