using System.Net;
using System.Text;
using System.Text.Json;
using ManaSync.Testing;
using ManaSync.Web.Auth;
using Xunit;
using static ManaSync.Testing.Changes;

namespace ManaSync.Tests.Operations;

/// <summary>The built server in the Production environment, with keys from a JWKS endpoint.</summary>
public sealed class ProductionModeTests : IAsyncLifetime
{
    private JwksServer _jwks = null!;
    private Ed25519SecurityKey _key = null!;
    private ServerProcess _server = null!;

    public async Task InitializeAsync()
    {
        _jwks = await JwksServer.StartAsync();
        _key = _jwks.AddKey("prod-key");
        _server = await ServerProcess.StartAsync(await TestCluster.CreateDatabaseAsync(),
            new Dictionary<string, string> { ["ASPNETCORE_ENVIRONMENT"] = "Production", ["JWKS_URL"] = _jwks.Url });
    }

    public async Task DisposeAsync()
    {
        await _server.DisposeAsync();
        await _jwks.DisposeAsync();
    }

    [Fact]
    public async Task Dev_routes_do_not_exist_and_real_tokens_work()
    {
        using var devToken = await _server.Client.PostAsync("/dev/token", new StringContent("""{"sub":"alice"}""", Encoding.UTF8, "application/json"));
        using var devJwks = await _server.Client.GetAsync("/dev/jwks");
        var push = await _server.ClientWithToken(Ed25519Tokens.Issue(_key, "alice", TimeSpan.FromMinutes(5), DateTimeOffset.UtcNow))
            .PushAsync("todo", Batch(Insert("tasks", "t1", new { })));

        Assert.Equal(HttpStatusCode.NotFound, devToken.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, devJwks.StatusCode);
        push.AssertStatus(HttpStatusCode.OK);
    }

    [Fact]
    public async Task Logs_are_json_lines_that_carry_the_request_and_the_user_but_not_the_token()
    {
        var token = Ed25519Tokens.Issue(_key, "log-user", TimeSpan.FromMinutes(5), DateTimeOffset.UtcNow);
        await _server.ClientWithToken(token).PullAsync("todo", "tasks");

        // The log is written asynchronously: wait for the request's lines instead of a fixed time a busy machine may exceed.
        static bool ByLogUser(JsonElement line) => line.GetRawText().Contains("\"UserId\":\"log-user\"");
        List<JsonElement> requestLines = [];
        for (var attempt = 0; attempt < 100 && !requestLines.Any(ByLogUser); attempt++)
        {
            await Task.Delay(100);
            requestLines = _server.Output.Split('\n')
                .Where(line => line.StartsWith('{') && line.Contains("/sync/todo/pull"))
                .Select(line => JsonDocument.Parse(line).RootElement)
                .ToList();
        }

        Assert.NotEmpty(requestLines);
        Assert.Contains(requestLines, ByLogUser);
        Assert.DoesNotContain(token, _server.Output);
    }
}
