using System.Net;
using ManaSync.Testing;
using ManaSync.Tests.Support;
using Xunit;
using static ManaSync.Testing.Changes;

namespace ManaSync.Tests.Sync;

public sealed class PagingTests(AppFixture app) : SyncTest(app)
{
    private async Task PushRecordsAsync(SyncClient device, int count, string table = "tasks")
    {
        for (var start = 0; start < count; start += 500)
        {
            var changes = Enumerable.Range(start, Math.Min(500, count - start))
                .Select(i => (object)Insert(table, $"r{i:D5}", new { n = i })).ToArray();
            (await device.PushAsync("todo", Batch(changes))).AssertStatus(HttpStatusCode.OK);
        }
    }

    [Fact]
    public async Task Records_2500_page_exactly_once()
    {
        await PushRecordsAsync(App.ClientFor("alice", "writer"), 2500);
        var reader = App.ClientFor("alice", "reader");

        var pages = new List<int>();
        var seen = new List<string>();
        string? cursor = null;
        bool hasMore;
        do
        {
            var reply = (await reader.PullAsync("todo", "tasks", cursor)).AssertStatus(HttpStatusCode.OK);
            pages.Add(reply.Changes.Count);
            seen.AddRange(reply.Changes.Select(change => change["id"]!.GetValue<string>()));
            hasMore = reply.HasMore;
            Assert.True(cursor is null || string.CompareOrdinal(cursor, reply.Cursor) < 0, "cursors grow");
            cursor = reply.Cursor;
        } while (hasMore);

        Assert.Equal([1000, 1000, 500], pages);
        Assert.Equal(2500, seen.Distinct().Count());
        Assert.Equal(2500, seen.Count);
        Assert.Empty((await reader.PullAsync("todo", "tasks", cursor)).Changes);
    }

    [Fact]
    public async Task The_last_page_has_no_hasMore_member_at_all()
    {
        await PushRecordsAsync(App.ClientFor("alice"), 3);

        var reply = await App.ClientFor("alice").PullAsync("todo", "tasks");

        Assert.Equal(3, reply.Changes.Count);
        Assert.False(reply.Json.ContainsKey("hasMore"));
    }

    [Fact]
    public async Task Limit_sets_the_page_size_up_to_5000()
    {
        await PushRecordsAsync(App.ClientFor("alice"), 30);
        var reader = App.ClientFor("alice");

        var page = await reader.PullAsync("todo", "tasks", limit: 10);

        Assert.Equal(10, page.Changes.Count);
        Assert.True(page.HasMore);
        (await reader.PullAsync("todo", "tasks", limit: 5001)).AssertStatus(HttpStatusCode.BadRequest);
        (await reader.PullAsync("todo", "tasks", limit: 0)).AssertStatus(HttpStatusCode.BadRequest);
    }

    [Fact]
    public async Task Cursors_sort_between_the_clients_initial_cursor_and_the_current_time()
    {
        await PushRecordsAsync(App.ClientFor("alice"), 5);

        var first = await App.ClientFor("alice").PullAsync("todo", "tasks", limit: 2);
        var second = await App.ClientFor("alice").PullAsync("todo", "tasks", first.Cursor);
        var now = DateTimeOffset.UtcNow.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'");

        Assert.Matches($"^{Reply.CursorPattern}$", first.Cursor);
        Assert.True(string.CompareOrdinal("1970-01-01T00:00:00.000Z", first.Cursor) < 0);
        Assert.True(string.CompareOrdinal(first.Cursor, second.Cursor) < 0);
        Assert.True(string.CompareOrdinal(second.Cursor, now) < 0);
    }

    [Fact]
    public async Task Only_the_requested_collection_is_pulled()
    {
        await PushRecordsAsync(App.ClientFor("alice"), 3, "tasks");
        await PushRecordsAsync(App.ClientFor("alice"), 2, "notes");

        var (notes, _) = await App.ClientFor("alice").PullAllAsync("todo", "notes");

        Assert.Equal(2, notes.Count);
        Assert.All(notes, change => Assert.Equal("notes", change["table"]!.GetValue<string>()));
    }

    [Fact]
    public async Task A_record_changed_many_times_comes_back_once_with_its_current_state()
    {
        var writer = App.ClientFor("alice", "writer");
        (await writer.PushAsync("todo", Batch(Insert("tasks", "t1", new { title = "v0", updatedAt = "2026-01-01T00:00:00.000Z" }))))
            .AssertStatus(HttpStatusCode.OK);
        var (_, cursor) = await App.ClientFor("alice", "reader").PullAllAsync("todo", "tasks");
        for (var i = 1; i <= 50; i++)
            (await writer.PushAsync("todo", Batch(Update("tasks", "t1", "title", $"v{i}", $"2026-01-01T00:{i:D2}:00.000Z"))))
                .AssertStatus(HttpStatusCode.OK);

        var (changes, _) = await App.ClientFor("alice", "reader").PullAllAsync("todo", "tasks", cursor);

        var change = Assert.Single(changes);
        Assert.Equal("update", change["op"]!.GetValue<string>());
        Assert.Equal("v50", change["fields"]!["title"]!["value"]!.GetValue<string>());
        Assert.Null(change["fields"]!["n"]);
    }

    [Fact]
    public async Task A_legacy_timestamp_cursor_is_accepted_and_an_unreadable_one_refused()
    {
        await PushRecordsAsync(App.ClientFor("alice"), 3);
        var reader = App.ClientFor("alice");

        var recent = await reader.PullAsync("todo", "tasks", DateTimeOffset.UtcNow.AddHours(-1).ToString("O"));
        var future = await reader.PullAsync("todo", "tasks", DateTimeOffset.UtcNow.AddHours(1).ToString("O"));
        var bad = await reader.PullAsync("todo", "tasks", "not-a-cursor");
        var noCollection = await reader.SendRawAsync(HttpMethod.Get, "/sync/todo/pull");

        Assert.Equal(3, recent.AssertStatus(HttpStatusCode.OK).Changes.Count);
        // A legacy cursor is the Go service's: whatever its time, its holder has nothing ManaSync stored itself.
        Assert.Equal(3, future.AssertStatus(HttpStatusCode.OK).Changes.Count);
        Assert.Matches($"^{Reply.CursorPattern}$", recent.Cursor);
        bad.AssertStatus(HttpStatusCode.BadRequest);
        noCollection.AssertStatus(HttpStatusCode.BadRequest);
    }

    [Fact]
    public async Task A_legacy_timestamp_cursor_still_learns_of_deletes()
    {
        var writer = App.ClientFor("alice", "writer");
        await PushRecordsAsync(writer, 2);
        var legacyCursor = DateTimeOffset.UtcNow.AddMinutes(-1).ToString("O");
        (await writer.PushAsync("todo", Batch(Delete("tasks", "r00000")))).AssertStatus(HttpStatusCode.OK);

        var (changes, _) = await App.ClientFor("alice", "legacy").PullAllAsync("todo", "tasks", legacyCursor);
        var (fresh, _) = await App.ClientFor("alice", "new-device").PullAllAsync("todo", "tasks");

        Assert.Equal("delete", changes.Single(change => change["id"]!.GetValue<string>() == "r00000")["op"]!.GetValue<string>());
        Assert.Equal(["r00001"], fresh.Select(change => change["id"]!.GetValue<string>()));
    }

    [Fact]
    public async Task Push_caps_server_changes_at_1000_and_the_cursor_leads_to_the_rest()
    {
        await PushRecordsAsync(App.ClientFor("alice", "other"), 1500);
        var device = App.ClientFor("alice", "device");

        var first = (await device.PushAsync("todo", Batch())).AssertStatus(HttpStatusCode.OK);
        var second = (await device.PushAsync("todo", BatchSince(first.Cursor))).AssertStatus(HttpStatusCode.OK);

        Assert.Equal(1000, first.Changes.Count);
        Assert.True(first.HasMore);
        Assert.Equal(500, second.Changes.Count);
        Assert.False(second.HasMore);
        Assert.Equal(1500, first.Changes.Concat(second.Changes).Select(c => c["id"]!.GetValue<string>()).Distinct().Count());
    }
}
