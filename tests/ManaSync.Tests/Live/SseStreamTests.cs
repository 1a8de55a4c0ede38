using System.Net;
using System.Text.Json.Nodes;
using ManaSync.Testing;
using Xunit;
using static ManaSync.Testing.Changes;

namespace ManaSync.Tests.Live;

/// <summary>Server-sent events over a real socket. Each test uses its own user, so tests do not see each other's data.</summary>
[Collection(LiveCollection.Name)]
public sealed class SseStreamTests(LiveFixture live)
{
    private static readonly double StreamEndpointPollSeconds = ManaSync.Web.Features.Live.StreamEndpoint.PollInterval.TotalSeconds;

    private static string NewUser() => UniqueIds.New("user");

    private static List<string> Ids(IEnumerable<SseEvent> events) =>
        events.SelectMany(e => e.Json["changes"]!.AsArray()).Select(c => c!["id"]!.GetValue<string>()).ToList();

    private async Task PushAsync(ServerProcess node, string user, params object[] changes) =>
        (await node.ClientWithToken(live.Token(user), "writer").PushAsync("todo", Batch(changes))).AssertStatus(HttpStatusCode.OK);

    [Fact]
    public async Task Headers_arrive_at_once_before_any_change()
    {
        await using var stream = await SseStream.OpenAsync(live.Node1.Client, "/sync/todo/stream?collections=tasks", live.Token(NewUser()));

        Assert.Equal(HttpStatusCode.OK, stream.Response.StatusCode);
        Assert.Equal("text/event-stream", stream.Response.Content.Headers.ContentType?.MediaType);
    }

    [Fact]
    public async Task The_backlog_comes_page_by_page_then_live_changes_follow()
    {
        var user = NewUser();
        for (var start = 0; start < 2500; start += 500)
            await PushAsync(live.Node1, user, Enumerable.Range(start, 500).Select(i => (object)Insert("tasks", $"r{i:D4}", new { i })).ToArray());

        await using var stream = await SseStream.OpenAsync(live.Node1.Client, "/sync/todo/stream?collections=tasks", live.Token(user));
        var backlog = await stream.ChangesAsync(2500);
        await PushAsync(live.Node1, user, Insert("tasks", "live-one", new { i = -1 }));
        var liveEvent = await stream.NextAsync();

        Assert.Equal(2500, Ids(backlog).Distinct().Count());
        Assert.Equal(2500, Ids(backlog).Count);
        Assert.True(backlog.Count >= 3, "the backlog is paged");
        Assert.All(backlog[..^1], e => Assert.True(e.Json["hasMore"]!.GetValue<bool>()));
        Assert.False(backlog[^1].Json["hasMore"]!.GetValue<bool>());
        Assert.Equal(["live-one"], Ids([liveEvent]));
        Assert.Equal("tasks", liveEvent.Json["table"]!.GetValue<string>());
        Assert.Matches($"(?m)^id: {Reply.CursorPattern}$", stream.Raw);
        Assert.All(backlog.Append(liveEvent), e => Assert.Equal(e.Id, e.Json["syncedUntil"]!.GetValue<string>()));
    }

    [Fact]
    public async Task Changes_carry_event_id_schema_version_and_space_like_pull()
    {
        var user = NewUser();
        await using var stream = await SseStream.OpenAsync(live.Node1.Client, "/sync/todo/stream?collections=tasks", live.Token(user));
        await PushAsync(live.Node1, user, Insert("tasks", "t1", new { title = "x" }, Guid.NewGuid()));

        var change = (await stream.NextAsync()).Json["changes"]![0]!.AsObject();

        Assert.Matches("^[0-9a-f-]{36}$", change["eventId"]!.GetValue<string>());
        Assert.Equal(1, change["schemaVersion"]!.GetValue<int>());
    }

    [Fact]
    public async Task Only_the_listed_collections_are_sent()
    {
        var user = NewUser();
        await using var stream = await SseStream.OpenAsync(live.Node1.Client, "/sync/todo/stream?collections=tasks", live.Token(user));
        await PushAsync(live.Node1, user, Insert("notes", "n1", new { }));
        await PushAsync(live.Node1, user, Insert("tasks", "t1", new { }));

        var first = await stream.NextAsync();

        Assert.Equal("tasks", first.Json["table"]!.GetValue<string>());
        Assert.Equal(["t1"], Ids([first]));
        Assert.DoesNotContain("\"notes\"", stream.Raw);
    }

    [Fact]
    public async Task A_reconnect_with_Last_Event_ID_resumes_without_gap_or_repeat()
    {
        var user = NewUser();
        var token = live.Token(user);
        await PushAsync(live.Node1, user, Enumerable.Range(0, 5).Select(i => (object)Insert("tasks", $"a{i}", new { i })).ToArray());
        string lastId;
        List<string> before;
        await using (var first = await SseStream.OpenAsync(live.Node1.Client, "/sync/todo/stream?collections=tasks,notes", token))
        {
            var events = await first.ChangesAsync(5);
            before = Ids(events);
            lastId = events[^1].Id!;
        }
        await PushAsync(live.Node1, user, Insert("notes", "n0", new { }), Insert("tasks", "b0", new { }), Insert("notes", "n1", new { }));

        await using var resumed = await SseStream.OpenAsync(live.Node2.Client, "/sync/todo/stream?collections=tasks,notes", token, lastId);
        var after = Ids(await resumed.ChangesAsync(3));

        Assert.Equal(5, before.Count);
        Assert.Equal(["n0", "b0", "n1"], after);
    }

    [Fact]
    public async Task A_push_on_one_node_reaches_a_stream_on_the_other()
    {
        var user = NewUser();
        // Node 2 subscribes before it sends the headers, so the stream is live once they arrive.
        await using var stream = await SseStream.OpenAsync(live.Node2.Client, "/sync/todo/stream?collections=tasks", live.Token(user));

        await PushAsync(live.Node1, user, Insert("tasks", "cross-node", new { }));

        // Sooner than node 2's heartbeat and safety-net poll: only the notification can have woken it.
        Assert.True(StreamEndpointPollSeconds > 10);
        Assert.Equal(["cross-node"], Ids([await stream.NextAsync(withinSeconds: 10)]));
    }

    [Fact]
    public async Task Another_users_changes_are_not_streamed()
    {
        var watcher = NewUser();
        await using var stream = await SseStream.OpenAsync(live.Node1.Client, "/sync/todo/stream?collections=tasks", live.Token(watcher));
        await PushAsync(live.Node1, NewUser(), Insert("tasks", "not-yours", new { }));
        await PushAsync(live.Node1, watcher, Insert("tasks", "yours", new { }));

        Assert.Equal(["yours"], Ids([await stream.NextAsync()]));
    }

    [Fact]
    public async Task A_stream_that_is_not_read_does_not_hold_up_the_others()
    {
        var user = NewUser();
        var token = live.Token(user);
        // Never read: its socket buffers fill up while the backlog below is written to it.
        using var stalled = await live.Node1.Client.SendAsync(
            new HttpRequestMessage(HttpMethod.Get, "/sync/todo/stream?collections=tasks") { Headers = { { "Authorization", "Bearer " + token } } },
            HttpCompletionOption.ResponseHeadersRead);
        var bulk = new string('x', 4000);
        for (var batch = 0; batch < 8; batch++)
            await PushAsync(live.Node1, user, Enumerable.Range(0, 500).Select(i => (object)Insert("tasks", $"b{batch}-{i}", new { bulk })).ToArray());

        await using var reader = await SseStream.OpenAsync(live.Node1.Client, "/sync/todo/stream?collections=notes", token);
        await PushAsync(live.Node1, user, Insert("notes", "fresh", new { }));

        Assert.Equal(["fresh"], Ids([await reader.NextAsync()]));
    }

    [Fact]
    public async Task Heartbeats_keep_an_idle_stream_alive()
    {
        await using var stream = await SseStream.OpenAsync(live.Node1.Client, "/sync/todo/stream", live.Token(NewUser()));

        var heartbeat = await stream.NextAsync("heartbeat");

        Assert.Equal("{}", heartbeat.Data);
        Assert.Null(heartbeat.Id);
    }

    [Fact]
    public async Task When_the_token_expires_the_stream_says_so_and_closes()
    {
        await using var stream = await SseStream.OpenAsync(live.Node1.Client, "/sync/todo/stream",
            live.Token(NewUser(), TimeSpan.FromSeconds(3)));

        await stream.NextAsync("auth-expired");

        Assert.True(await stream.EndsWithinAsync(10));
    }

    [Fact]
    public async Task A_bad_cursor_or_no_token_is_refused_before_streaming()
    {
        await using var badCursor = await SseStream.OpenAsync(live.Node1.Client, "/sync/todo/stream?since=nonsense", live.Token(NewUser()));
        using var noToken = await live.Node1.Client.GetAsync("/sync/todo/stream", HttpCompletionOption.ResponseHeadersRead);

        Assert.Equal(HttpStatusCode.BadRequest, badCursor.Response.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, noToken.StatusCode);
    }

    [Fact]
    public async Task Open_streams_are_counted_in_health()
    {
        var user = NewUser();
        await using var stream = await SseStream.OpenAsync(live.Node1.Client, "/sync/todo/stream", live.Token(user));
        await stream.NextAsync("heartbeat");

        var health = JsonNode.Parse(await live.Node1.Client.GetStringAsync("/health"))!;

        Assert.True(health["connections"]!.GetValue<int>() >= 1);
        Assert.True(health["users"]!.GetValue<int>() >= 1);
    }
}
