using System.Net;
using System.Text;
using ManaSync.Testing;
using ManaSync.Tests.Support;
using Xunit;

namespace ManaSync.Tests.Sync;

public sealed class PushValidationTests(AppFixture app) : SyncTest(app)
{
    private const string Good = """{"table":"tasks","id":"ok","op":"insert","data":{"title":"fine"}}""";

    public static TheoryData<string, string, int?> BadBatches() => new()
    {
        { "op not allowed", $$$"""{"changes":[{{{Good}}},{"table":"tasks","id":"x","op":"upsert"}]}""", 1 },
        { "op missing", $$$"""{"changes":[{{{Good}}},{{{Good}}},{"table":"tasks","id":"x"}]}""", 2 },
        { "table missing", """{"changes":[{"id":"x","op":"insert","data":{}}]}""", 0 },
        { "table empty", """{"changes":[{"table":"","id":"x","op":"insert","data":{}}]}""", 0 },
        { "id empty", $$$"""{"changes":[{{{Good}}},{"table":"tasks","id":"","op":"insert","data":{}}]}""", 1 },
        { "id not a string", """{"changes":[{"table":"tasks","id":7,"op":"insert","data":{}}]}""", 0 },
        { "field null", $$$"""{"changes":[{{{Good}}},{"table":"tasks","id":"x","op":"update","fields":{"x":null}}]}""", 1 },
        { "field without updatedAt", """{"changes":[{"table":"tasks","id":"x","op":"update","fields":{"x":{"value":1}}}]}""", 0 },
        { "field with bad updatedAt", """{"changes":[{"table":"tasks","id":"x","op":"update","fields":{"x":{"value":1,"updatedAt":"yesterday"}}}]}""", 0 },
        { "fields not an object", """{"changes":[{"table":"tasks","id":"x","op":"update","fields":[1]}]}""", 0 },
        { "data not an object", """{"changes":[{"table":"tasks","id":"x","op":"insert","data":"text"}]}""", 0 },
        { "deletedAt not a time", """{"changes":[{"table":"tasks","id":"x","op":"delete","deletedAt":"soon"}]}""", 0 },
        { "change schemaVersion too new", """{"changes":[{"table":"tasks","id":"x","op":"insert","data":{},"schemaVersion":2}]}""", 0 },
        { "batch schemaVersion too new", $$$"""{"schemaVersion":2,"changes":[{{{Good}}}]}""", null },
        { "eventId not a UUID", """{"changes":[{"table":"tasks","id":"x","op":"insert","data":{},"eventId":"abc"}]}""", 0 },
        { "eventId twice", """{"changes":[{"table":"t","id":"a","op":"insert","data":{},"eventId":"0b0c3f7e-9b7b-4c8e-9d55-5b1e3c9b7a11"},{"table":"t","id":"b","op":"insert","data":{},"eventId":"0b0c3f7e-9b7b-4c8e-9d55-5b1e3c9b7a11"}]}""", 1 },
        { "NUL in a value", $$$"""{"changes":[{{{Good}}},{"table":"tasks","id":"x","op":"insert","data":{"t":"a\u0000b"}}]}""", 1 },
        { "NUL in a key", """{"changes":[{"table":"tasks","id":"x","op":"insert","data":{"a\u0000":1}}]}""", 0 },
        { "lone surrogate", """{"changes":[{"table":"tasks","id":"x","op":"insert","data":{"t":"\ud800"}}]}""", 0 },
        { "number beyond a double", """{"changes":[{"table":"tasks","id":"x","op":"insert","data":{"n":1e400}}]}""", 0 },
        { "changes missing", """{"clientId":"c"}""", null },
        { "changes not an array", """{"changes":{}}""", null },
        { "body not an object", """[1,2,3]""", null },
        { "malformed JSON", """{"changes":[""", null },
        { "duplicate keys", """{"changes":[{"table":"a","table":"b","id":"x","op":"insert","data":{}}]}""", null },
        { "empty body", "", null },
    };

    [Theory]
    [MemberData(nameof(BadBatches))]
    public async Task A_bad_batch_is_refused_whole_and_stores_nothing(string fault, string body, int? index)
    {
        var reply = await App.ClientFor("alice").PushRawAsync("todo", Encoding.UTF8.GetBytes(body));

        reply.AssertStatus(HttpStatusCode.BadRequest);
        Assert.Equal("bad_request", reply.Json["error"]!.GetValue<string>());
        Assert.False(string.IsNullOrWhiteSpace(reply.Json["message"]!.GetValue<string>()), fault);
        Assert.Equal(index, reply.Json["index"]?.GetValue<int>());
        Assert.Empty(await App.StoredEventsAsync());
    }

    [Fact]
    public async Task Nesting_deeper_than_64_is_refused()
    {
        var deep = new string('[', 70) + new string(']', 70);
        var reply = await App.ClientFor("alice").PushRawAsync("todo",
            Encoding.UTF8.GetBytes($$$"""{"changes":[{"table":"t","id":"x","op":"insert","data":{"deep":{{{deep}}}}}]}"""));

        reply.AssertStatus(HttpStatusCode.BadRequest);
        Assert.Empty(await App.StoredEventsAsync());
    }

    [Fact]
    public async Task Invalid_utf8_is_refused()
    {
        var body = Encoding.UTF8.GetBytes("""{"changes":[{"table":"t","id":"x","op":"insert","data":{"t":"AB"}}]}""");
        var at = Array.IndexOf(body, (byte)'A');
        body[at] = 0xC3;
        body[at + 1] = 0x28; // 0xC3 must be followed by a continuation byte

        (await App.ClientFor("alice").PushRawAsync("todo", body)).AssertStatus(HttpStatusCode.BadRequest);
        Assert.Empty(await App.StoredEventsAsync());
    }

    [Fact]
    public async Task More_than_5000_changes_are_refused()
    {
        var changes = Enumerable.Range(0, 5001).Select(i => Changes.Insert("t", $"r{i}", new { n = i })).ToArray();

        var reply = await App.ClientFor("alice").PushAsync("todo", Changes.Batch(changes));

        reply.AssertStatus(HttpStatusCode.BadRequest);
        Assert.Contains("5000", reply.Json["message"]!.GetValue<string>());
        Assert.Empty(await App.StoredEventsAsync());
    }

    [Fact]
    public async Task A_body_over_10_MiB_is_refused_with_413()
    {
        var filler = new string('x', 10 * 1024 * 1024);
        var reply = await App.ClientFor("alice").PushRawAsync("todo",
            Encoding.UTF8.GetBytes($$$"""{"changes":[{"table":"t","id":"x","op":"insert","data":{"blob":"{{{filler}}}"}}]}"""));

        reply.AssertStatus(HttpStatusCode.RequestEntityTooLarge);
        Assert.Equal("payload_too_large", reply.Json["error"]!.GetValue<string>());
        Assert.Empty(await App.StoredEventsAsync());
    }

    [Fact]
    public async Task An_invalid_app_id_is_refused()
    {
        (await App.ClientFor("alice").PushAsync("bad app!", Changes.Batch())).AssertStatus(HttpStatusCode.BadRequest);
    }

    [Fact]
    public async Task The_server_stays_healthy_after_bad_input()
    {
        foreach (var (_, body, _) in BadBatches().Select(row => ((string)row[0], (string)row[1], (int?)row[2])))
            await App.ClientFor("alice").PushRawAsync("todo", Encoding.UTF8.GetBytes(body));

        var health = await App.Client.GetAsync("/health");
        var good = await App.ClientFor("alice").PushRawAsync("todo", Encoding.UTF8.GetBytes($$$"""{"changes":[{{{Good}}}]}"""));

        Assert.Equal(HttpStatusCode.OK, health.StatusCode);
        good.AssertStatus(HttpStatusCode.OK);
        Assert.Single(await App.StoredEventsAsync());
    }
}
