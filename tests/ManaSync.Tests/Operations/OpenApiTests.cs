using System.Net;
using System.Text.Json.Nodes;
using ManaSync.Tests.Support;
using Xunit;

namespace ManaSync.Tests.Operations;

public sealed class OpenApiTests(AppFixture app) : SyncTest(app)
{
    [Fact]
    public async Task The_openapi_document_describes_the_protocols_paths()
    {
        using var response = await App.Client.GetAsync("/openapi/v1.json");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var paths = JsonNode.Parse(await response.Content.ReadAsStringAsync())!["paths"]!.AsObject();
        foreach (var path in new[]
                 {
                     "/sync/{appId}", "/sync/{appId}/pull", "/sync/{appId}/stream", "/ws", "/ws/{appId}", "/backup/export",
                     "/backup/import", "/audit/{appId}/{table}/{id}/history", "/audit/{appId}/{table}/{id}", "/health",
                 })
            Assert.True(paths.ContainsKey(path), path);
        Assert.NotNull(paths["/sync/{appId}"]!["post"]!["responses"]!["409"]);
        Assert.NotNull(paths["/sync/{appId}/pull"]!["get"]!["responses"]!["200"]!["content"]!["application/json"]);
    }
}
