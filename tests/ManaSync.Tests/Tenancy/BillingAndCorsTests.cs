using System.Net;
using System.Net.Http.Headers;
using ManaSync.Testing;
using Xunit;
using static ManaSync.Testing.Changes;

namespace ManaSync.Tests.Tenancy;

[Collection(TenancyCollection.Name)]
public sealed class BillingAndCorsTests(TenancyFixture app)
{
    [Fact]
    public async Task An_inactive_account_gets_402_on_push_pull_and_stream()
    {
        var user = UniqueIds.New("lapsed");
        app.Services.Inactive[user] = true;
        var client = app.ClientFor(user);

        var push = await client.PushAsync("todo", Batch(Insert("tasks", "t1", new { })));
        var pull = await client.PullAsync("todo", "tasks");
        using var streamRequest = new HttpRequestMessage(HttpMethod.Get, "/sync/todo/stream");
        streamRequest.Headers.Authorization = new AuthenticationHeaderValue("Bearer", app.TokenFor(user));
        using var stream = await app.Client.SendAsync(streamRequest, HttpCompletionOption.ResponseHeadersRead);

        foreach (var reply in new[] { push, pull })
        {
            reply.AssertStatus(HttpStatusCode.PaymentRequired);
            Assert.Equal("sync_inactive", reply.Json["error"]!.GetValue<string>());
        }
        Assert.Equal(HttpStatusCode.PaymentRequired, stream.StatusCode);
        Assert.DoesNotContain(await app.StoredEventsAsync(), e => e.UserId == user);
    }

    [Fact]
    public async Task Exempt_apps_skip_the_billing_gate()
    {
        var user = UniqueIds.New("lapsed");
        app.Services.Inactive[user] = true;

        (await app.ClientFor(user).PushAsync("free-app", Batch(Insert("notes", "n1", new { })))).AssertStatus(HttpStatusCode.OK);
    }

    [Fact]
    public async Task When_the_credits_service_fails_sync_goes_on()
    {
        var user = UniqueIds.New("unknown-plan");
        app.Services.CreditsDown = true;
        try
        {
            (await app.ClientFor(user).PushAsync("todo", Batch(Insert("tasks", "t1", new { })))).AssertStatus(HttpStatusCode.OK);
        }
        finally
        {
            app.Services.CreditsDown = false;
        }
    }

    [Fact]
    public async Task Health_and_export_are_never_gated()
    {
        var user = UniqueIds.New("lapsed");
        app.Services.Inactive[user] = true;
        using var export = new HttpRequestMessage(HttpMethod.Get, "/backup/export");
        export.Headers.Authorization = new AuthenticationHeaderValue("Bearer", app.TokenFor(user));

        using var health = await app.Client.GetAsync("/health");
        using var exported = await app.Client.SendAsync(export);

        Assert.Equal(HttpStatusCode.OK, health.StatusCode);
        Assert.Equal(HttpStatusCode.OK, exported.StatusCode);
    }

    [Fact]
    public async Task A_preflight_from_an_allowed_origin_is_answered_with_the_cors_headers()
    {
        using var preflight = new HttpRequestMessage(HttpMethod.Options, "/sync/todo");
        preflight.Headers.Add("Origin", TenancyFixture.AllowedOrigin);
        preflight.Headers.Add("Access-Control-Request-Method", "POST");
        preflight.Headers.Add("Access-Control-Request-Headers", "authorization,content-type,x-client-id");

        using var response = await app.Client.SendAsync(preflight);

        Assert.True(response.IsSuccessStatusCode);
        Assert.Equal(TenancyFixture.AllowedOrigin, response.Headers.GetValues("Access-Control-Allow-Origin").Single());
        Assert.Equal("true", response.Headers.GetValues("Access-Control-Allow-Credentials").Single());
        Assert.Contains("POST", string.Join(',', response.Headers.GetValues("Access-Control-Allow-Methods")));
        Assert.Contains("x-client-id", string.Join(',', response.Headers.GetValues("Access-Control-Allow-Headers")).ToLowerInvariant());
    }

    [Fact]
    public async Task Another_origin_gets_no_cors_headers()
    {
        using var preflight = new HttpRequestMessage(HttpMethod.Options, "/sync/todo");
        preflight.Headers.Add("Origin", "https://evil.example");
        preflight.Headers.Add("Access-Control-Request-Method", "POST");

        using var response = await app.Client.SendAsync(preflight);

        Assert.False(response.Headers.Contains("Access-Control-Allow-Origin"));
    }
}
