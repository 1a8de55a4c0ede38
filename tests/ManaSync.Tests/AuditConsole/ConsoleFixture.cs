using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using ManaSync.Testing;
using Microsoft.Playwright;
using Xunit;

namespace ManaSync.Tests.AuditConsole;

/// <summary>
/// The server as its own process on a real port (Development mode, so it issues dev tokens) and headless Chromium driven by
/// Playwright: Debian's chromium (Playwright's own browser download cannot work on these machines; `.ci/run` installs it).
/// </summary>
public sealed class ConsoleFixture : IAsyncLifetime
{
    /// <summary>Where Debian's package puts the browser; CHROMIUM_PATH overrides it.</summary>
    public static string ChromiumPath => Environment.GetEnvironmentVariable("CHROMIUM_PATH") ?? "/usr/bin/chromium";

    public ServerProcess Server { get; private set; } = null!;
    public IBrowser Browser { get; private set; } = null!;
    private IPlaywright _playwright = null!;

    public async Task InitializeAsync()
    {
        Server = await ServerProcess.StartAsync(await TestCluster.CreateDatabaseAsync());
        _playwright = await Playwright.CreateAsync();
        Browser = await _playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = ChromiumPath,
            Headless = true,
            // The machine's network is closed: without these Chromium keeps trying to reach Google's services.
            Args = ["--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
        });
    }

    public async Task<IPage> NewPageAsync()
    {
        var page = await Browser.NewPageAsync(new BrowserNewPageOptions { BaseURL = Server.BaseAddress.ToString(), ViewportSize = new() { Width = 1280, Height = 900 } });
        page.SetDefaultTimeout(15_000);
        return page;
    }

    /// <summary>A development token for the user, as the console's own dev sign-in gets one.</summary>
    public async Task<string> TokenAsync(string userId, bool auditor = false)
    {
        using var reply = await Server.Client.PostAsJsonAsync("/dev/token", auditor ? new { sub = userId, scope = "audit" } : (object)new { sub = userId });
        reply.EnsureSuccessStatusCode();
        return JsonDocument.Parse(await reply.Content.ReadAsStringAsync()).RootElement.GetProperty("token").GetString()!;
    }

    /// <summary>Pushes changes as the user through the sync API.</summary>
    public async Task PushAsync(string userId, string clientId, object batch) =>
        (await new SyncClient(Server.Client, await TokenAsync(userId), clientId).PushAsync("todo", batch)).AssertStatus(HttpStatusCode.OK);

    /// <summary>Where screenshots go: CONSOLE_SCREENSHOTS (docs/console.md's come from there), else a temporary folder.</summary>
    public static string ScreenshotPath(string name) =>
        Path.Combine(Environment.GetEnvironmentVariable("CONSOLE_SCREENSHOTS") ?? Path.GetTempPath(), $"console-{name}.png");

    public async Task DisposeAsync()
    {
        await Browser.DisposeAsync();
        _playwright.Dispose();
        await Server.DisposeAsync();
    }
}

[CollectionDefinition(Name)]
public sealed class ConsoleCollection : ICollectionFixture<ConsoleFixture>
{
    public const string Name = "console";
}
