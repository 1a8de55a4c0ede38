using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using ManaSync.Events;
using ManaSync.Web.Features.Backup;
using ManaSync.Web.Features.Migration;
using ManaSync.Web.Features.Push;
using ManaSync.Web.Features.WritePath;
using ManaSync.Web.Infrastructure;
using Xunit;

namespace ManaSync.Core.Tests.WritePath;

/// <summary>
/// A change stored by one path (push, import of a backup, migration from the Go service) is recognised when the
/// same change comes again through any path, for every op shape with and without an actor; a changed one is not.
/// </summary>
public sealed class ChangePayloadTests
{
    private static readonly DateTimeOffset Received = new(2026, 12, 1, 9, 0, 0, TimeSpan.Zero);
    private static readonly Guid Id = Guid.Parse("0193a1b2-0000-7000-8000-000000000001");
    private const string Actor = """{"kind":"ai","missionId":"m-1"}""";

    /// <summary>Each shape as a device pushes it, and as the Go service stored it (op, data, field_timestamps).</summary>
    public static TheoryData<string, string, string, string?, string?> Shapes()
    {
        var data = new TheoryData<string, string, string, string?, string?>();
        foreach (var actor in new[] { null, Actor })
        {
            var withActor = actor is null ? "" : $",\"actor\":{actor}";
            data.Add("insert", $$$"""{"table":"tasks","id":"t1","op":"insert","data":{"id":"t1","title":"Milk","tags":["a",1.50],"updatedAt":"2026-12-01T08:00:00.000Z"}{{{withActor}}}}""",
                """{"id":"t1","title":"Milk","tags":["a",1.50],"updatedAt":"2026-12-01T08:00:00.000Z"}""", null, actor);
            data.Add("update", $$$"""{"table":"tasks","id":"t1","op":"update","spaceId":"team","fields":{"title":{"value":"Oat milk","updatedAt":"2026-12-01T08:01:00.000+01:00"},"wallpaper.source.id":{"value":{"x":null},"updatedAt":"2026-12-01T08:02:00Z"}}{{{withActor}}}}""",
                """{"title":"Oat milk","wallpaper.source.id":{"x":null}}""",
                """{"title":"2026-12-01T08:01:00.000+01:00","wallpaper.source.id":"2026-12-01T08:02:00Z"}""", actor);
            data.Add("soft delete", $$$"""{"table":"tasks","id":"t1","op":"delete","deletedAt":"2026-12-01T08:03:00.000Z","fields":{"updatedAt":{"value":"2026-12-01T08:03:00.000Z","updatedAt":"2026-12-01T08:03:00.000Z"}}{{{withActor}}}}""",
                """{"deletedAt":"2026-12-01T08:03:00.000Z"}""", null, actor);
            data.Add("hard delete", $$$"""{"table":"tasks","id":"t1","op":"delete"{{{withActor}}}}""", "null", null, actor);
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void A_change_stored_by_any_path_is_recognised_through_every_other_path(string shape, string pushed, string goData,
        string? goStamps, string? actor)
    {
        var byPush = Pushed(pushed);
        var byMigration = Migrated(shape, goData, goStamps, actor, SpaceOf(pushed));
        var stored = new[] { byPush, byMigration, Restored(byPush), Restored(byMigration), Restored(Restored(byPush)) };

        foreach (var first in stored)
        foreach (var retry in stored)
            Assert.True(ChangePayload.Same(first, retry), $"{shape}: {Describe(first)} vs {Describe(retry)}");
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void A_retry_that_differs_in_what_it_does_is_a_different_change(string shape, string pushed, string goData,
        string? goStamps, string? actor)
    {
        _ = (goData, goStamps);
        var stored = Pushed(pushed);
        var other = JsonNode.Parse(pushed)!.AsObject();
        other["actor"] = actor is null ? JsonNode.Parse(Actor) : JsonNode.Parse("""{"kind":"user"}""");
        Assert.False(ChangePayload.Same(stored, Pushed(other.ToJsonString())), shape + ": actor");

        var elsewhere = JsonNode.Parse(pushed)!.AsObject();
        elsewhere["id"] = "t2";
        Assert.False(ChangePayload.Same(stored, Pushed(elsewhere.ToJsonString())), shape + ": record");

        if (JsonNode.Parse(pushed)!["fields"] is JsonObject fields)
        {
            var later = JsonNode.Parse(pushed)!.AsObject();
            var name = fields.First().Key;
            later["fields"]![name]!["updatedAt"] = "2026-12-01T09:59:00.000Z";
            Assert.False(ChangePayload.Same(stored, Pushed(later.ToJsonString())), shape + ": a field's time");
        }
        if (JsonNode.Parse(pushed)!["data"] is JsonObject)
        {
            var edited = JsonNode.Parse(pushed)!.AsObject();
            edited["data"]!["title"] = "Soy milk";
            Assert.False(ChangePayload.Same(stored, Pushed(edited.ToJsonString())), shape + ": the snapshot");
        }
    }

    [Fact]
    public void Member_order_white_space_and_time_zones_do_not_make_a_retry_different()
    {
        var stored = Pushed("""{"table":"tasks","id":"t1","op":"update","fields":{"a":{"value":{"x":1,"y":[1,2]},"updatedAt":"2026-12-01T08:00:00Z"}}}""");
        var retry = Pushed("""{ "fields": { "a": { "updatedAt": "2026-12-01T09:00:00.000+01:00", "value": { "y": [1, 2], "x": 1.0 } } }, "op": "update", "id": "t1", "table": "tasks" }""");
        Assert.True(ChangePayload.Same(stored, retry));
    }

    private static ChangeRecorded Pushed(string change)
    {
        var body = Encoding.UTF8.GetBytes($$"""{"changes":[{{change.Replace("\"op\"", $"\"eventId\":\"{Id}\",\"op\"")}}]}""");
        var (batch, fault) = PushValidation.Read(body, new PushOrigin("alice", "todo", "laptop", Received), maxSchemaVersion: 1);
        Assert.Null(fault);
        return batch!.Changes.Single().ToEvent(commitTx: 100, index: 0, TimeSpan.FromMinutes(5));
    }

    private static ChangeRecorded Migrated(string shape, string data, string? stamps, string? actor, string? spaceId) =>
        new GoRow(Id, "todo", "tasks", "t1", "alice", shape.Split(' ').Last(), Element(data), stamps is null ? null : Element(stamps),
                "laptop", Received.AddDays(-30), actor is null ? null : Element(actor), 0, spaceId)
            .ToIncoming().ToEvent(commitTx: 7, index: 3, TimeSpan.FromMinutes(5));

    /// <summary>Exported into a backup, read back from it and imported, on another day.</summary>
    private static ChangeRecorded Restored(ChangeRecorded stored)
    {
        var line = JsonSerializer.SerializeToUtf8Bytes(BackupLine.From(stored), WireJson.Options);
        var (parsed, fault) = BackupReader.Parse(line, maxSchemaVersion: 1);
        Assert.Null(fault);
        return parsed!.ToIncoming("alice").ToEvent(commitTx: 900, index: 12, TimeSpan.FromMinutes(5));
    }

    private static string? SpaceOf(string pushed) => JsonNode.Parse(pushed)!["spaceId"]?.GetValue<string>();

    private static JsonElement? Element(string json) => json == "null" ? null : JsonDocument.Parse(json).RootElement.Clone();

    private static string Describe(ChangeRecorded change) =>
        JsonSerializer.Serialize(change with { ReceivedAt = default, FutureLimit = default, CommitTx = 0 });
}
