using ManaSync.Testing;
using Microsoft.Playwright;
using Xunit;
using static ManaSync.Testing.Changes;
using static Microsoft.Playwright.Assertions;

namespace ManaSync.Tests.AuditConsole;

/// <summary>
/// The audit console in a real browser against the real server (PROTOCOL §12): a user reads a record's timeline and steps
/// to a point in time, an auditor reads another user's stream and finds the read in the access log, and a user who is not
/// an auditor sees nothing of another user's, even with a crafted address.
/// </summary>
[Collection(ConsoleCollection.Name)]
public sealed class ConsoleBrowserTests(ConsoleFixture console)
{
    /// <summary>A record written, edited twice (once losing to a later write) and written by an AI agent.</summary>
    private async Task<string> SeedAsync()
    {
        var user = UniqueIds.New("alice");
        await console.PushAsync(user, "laptop", Batch(Insert("tasks", "t1", new { title = "draft", done = false, updatedAt = "2026-01-01T10:00:00.000Z" }),
            Insert("tasks", "t2", new { title = "groceries", updatedAt = "2026-01-01T10:00:00.000Z" })));
        await Task.Delay(20);
        await console.PushAsync(user, "phone", Batch(Update("tasks", "t1", "title", "final", "2026-01-01T10:05:00.000Z")));
        await Task.Delay(20);
        var byAgent = Update("tasks", "t1", "done", true, "2026-01-01T10:06:00.000Z");
        byAgent["actor"] = new { kind = "ai", missionId = "m-7" };
        await console.PushAsync(user, "phone", Batch(byAgent));
        return user;
    }

    private static async Task SignInAsync(IPage page, string userId, bool auditor = false)
    {
        await page.GotoAsync("/console");
        await page.GetByLabel("User id").FillAsync(userId);
        if (auditor) await page.GetByLabel("auditor").CheckAsync();
        // The keyboard alone: Enter submits the sign-in form.
        await page.GetByLabel("User id").PressAsync("Enter");
        await Expect(page.GetByText($"Signed in as {userId}")).ToBeVisibleAsync();
    }

    [Fact]
    public async Task A_user_opens_a_record_reads_its_timeline_and_steps_to_a_point_in_time()
    {
        var user = await SeedAsync();
        var page = await console.NewPageAsync();

        await SignInAsync(page, user);
        await Expect(page.GetByRole(AriaRole.Heading, new() { Name = $"Data of {user}" })).ToBeFocusedAsync();
        await Expect(page.GetByRole(AriaRole.Row, new() { Name = "todo tasks 2" })).ToBeVisibleAsync();
        await page.ScreenshotAsync(new() { Path = ConsoleFixture.ScreenshotPath("tables"), FullPage = true });
        await page.GetByRole(AriaRole.Link, new() { Name = "tasks" }).PressAsync("Enter");
        await Expect(page.GetByRole(AriaRole.Row, new() { Name = "t1 live" })).ToContainTextAsync("title: final");
        await Expect(page.GetByRole(AriaRole.Main)).Not.ToContainTextAsync("undefined");
        await page.ScreenshotAsync(new() { Path = ConsoleFixture.ScreenshotPath("records"), FullPage = true });
        await page.GetByRole(AriaRole.Link, new() { Name = "t1", Exact = true }).PressAsync("Enter");

        var events = page.Locator("li.event");
        await Expect(events).ToHaveCountAsync(3);
        await Expect(events.Nth(0).GetByRole(AriaRole.Heading)).ToContainTextAsync("insert");
        await Expect(events.Nth(0)).ToContainTextAsync("device laptop");
        await Expect(events.Nth(1).GetByRole(AriaRole.Row, new() { Name = "title draft final" })).ToBeVisibleAsync();
        await Expect(events.Nth(2)).ToContainTextAsync("actor ai m-7");
        await Expect(events.Nth(2).GetByRole(AriaRole.Row, new() { Name = "done false true" })).ToBeVisibleAsync();

        // Step to the moment of the first event: the record as it was then.
        await events.Nth(0).GetByRole(AriaRole.Link, new() { Name = "Show the record at this moment" }).PressAsync("Enter");
        var then = page.GetByRole(AriaRole.Region, new() { Name = "As of" });
        await Expect(then.GetByRole(AriaRole.Row, new() { Name = "title draft" })).ToBeVisibleAsync();
        await Expect(then.GetByRole(AriaRole.Row, new() { Name = "done false" })).ToBeVisibleAsync();
        await page.ScreenshotAsync(new() { Path = ConsoleFixture.ScreenshotPath("timeline"), FullPage = true });
        // And to the last: the agent's write is in.
        await page.Locator("li.event").Nth(2).GetByRole(AriaRole.Link, new() { Name = "Show the record at this moment" }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Region, new() { Name = "As of" }).GetByRole(AriaRole.Row, new() { Name = "done true" })).ToBeVisibleAsync();
        await Expect(page.GetByRole(AriaRole.Region, new() { Name = "As of" }).GetByRole(AriaRole.Row, new() { Name = "title final" })).ToBeVisibleAsync();
    }

    [Fact]
    public async Task An_auditor_replays_another_users_stream_and_finds_the_read_in_the_access_log()
    {
        var user = await SeedAsync();
        var auditor = UniqueIds.New("ada");
        var page = await console.NewPageAsync();

        await SignInAsync(page, auditor, auditor: true);
        await Expect(page.GetByText($"Signed in as {auditor} (auditor)")).ToBeVisibleAsync();
        await page.GetByRole(AriaRole.Link, new() { Name = "Stream replay" }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Heading, new() { Name = $"Event stream of {auditor}" })).ToBeVisibleAsync();
        await page.GetByLabel("User", new() { Exact = true }).FillAsync(user);
        await page.GetByLabel("User", new() { Exact = true }).PressAsync("Enter");
        await Expect(page.GetByRole(AriaRole.Heading, new() { Name = $"Event stream of {user}" })).ToBeVisibleAsync();
        var rows = page.Locator("table tbody tr");
        await Expect(rows).ToHaveCountAsync(4);
        await page.GetByLabel("Actor kind").SelectOptionAsync("ai");
        await page.GetByRole(AriaRole.Button, new() { Name = "Filter" }).ClickAsync();
        await Expect(rows).ToHaveCountAsync(1);
        await Expect(rows.First).ToContainTextAsync("m-7");
        await page.ScreenshotAsync(new() { Path = ConsoleFixture.ScreenshotPath("stream"), FullPage = true });
        var download = await page.RunAndWaitForDownloadAsync(() =>
            page.GetByRole(AriaRole.Button, new() { Name = "Export selection as JSON lines" }).ClickAsync());
        var exported = await File.ReadAllLinesAsync((await download.PathAsync())!);

        await page.GetByRole(AriaRole.Link, new() { Name = "Access log" }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Access log" })).ToBeVisibleAsync();
        var log = page.Locator("table tbody tr");
        await Expect(log.First).ToContainTextAsync(auditor);
        await Expect(log.First).ToContainTextAsync(user);
        await page.ScreenshotAsync(new() { Path = ConsoleFixture.ScreenshotPath("access-log"), FullPage = true });

        Assert.Contains("m-7", Assert.Single(exported));
    }

    [Fact]
    public async Task A_user_who_is_not_an_auditor_sees_nothing_of_another_users_data_even_by_a_crafted_address()
    {
        var user = await SeedAsync();
        var page = await console.NewPageAsync();

        await SignInAsync(page, UniqueIds.New("bob"));
        await Expect(page.GetByRole(AriaRole.Link, new() { Name = "Access log" })).ToBeHiddenAsync();
        await page.GotoAsync($"/console#/records?user={user}&app=todo&table=tasks");

        await Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Something went wrong" })).ToBeVisibleAsync();
        await Expect(page.GetByRole(AriaRole.Main)).ToContainTextAsync("Only an auditor reads another user's data.");
        await Expect(page.GetByText("groceries")).ToHaveCountAsync(0);
        await page.ScreenshotAsync(new() { Path = ConsoleFixture.ScreenshotPath("denied"), FullPage = true });
    }
}
