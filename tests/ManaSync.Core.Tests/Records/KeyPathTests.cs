using System.Text.Json;
using System.Text.Json.Nodes;
using ManaSync.Events;
using ManaSync.Projections.Records;
using Xunit;

namespace ManaSync.Core.Tests.Records;

/// <summary>Key paths as Dexie applies them, and the record state clients hold when writes use them.</summary>
public sealed class KeyPathTests
{
    [Theory]
    [InlineData("""{"a":{"b":1}}""", "a.c", """{"a":{"b":1,"c":9}}""")]
    [InlineData("""{}""", "a.b.c", """{"a":{"b":{"c":9}}}""")]
    [InlineData("""{"a":null}""", "a.b", """{"a":{"b":9}}""")]
    [InlineData("""{"a":0}""", "a.b", """{"a":{"b":9}}""")]
    [InlineData("""{"a":""}""", "a.b", """{"a":{"b":9}}""")]
    [InlineData("""{"a":false}""", "a.b", """{"a":{"b":9}}""")]
    [InlineData("""{"a":"text"}""", "a.b", """{"a":"text"}""")]
    [InlineData("""{"a":7}""", "a.b", """{"a":7}""")]
    [InlineData("""{"a":[1,2]}""", "a.1", """{"a":[1,9]}""")]
    [InlineData("""{"a":[1]}""", "a.2", """{"a":[1,null,9]}""")]
    [InlineData("""{"a":[1]}""", "a.x", """{"a":[1]}""")]
    public void A_key_path_sets_a_value_the_way_Dexie_does(string before, string path, string after)
    {
        var target = JsonNode.Parse(before)!.AsObject();
        KeyPath.Set(target, path, 9);
        Assert.Equal(JsonNode.Parse(after)!.ToJsonString(), target.ToJsonString());
    }

    [Fact]
    public void Removing_an_array_element_splices_it_out()
    {
        var target = JsonNode.Parse("""{"a":[1,2,3],"b":{"c":1,"d":2}}""")!.AsObject();
        KeyPath.Remove(target, "a.0");
        KeyPath.Remove(target, "b.c");
        Assert.Equal("""{"a":[2,3],"b":{"d":2}}""", target.ToJsonString());
    }

    [Fact]
    public void A_paths_ancestors_are_its_whole_leading_segments()
    {
        Assert.Equal(["a", "a.b"], KeyPath.Ancestors("a.b.c"));
        Assert.Equal(["ab"], KeyPath.Ancestors("ab.c"));
        Assert.Empty(KeyPath.Ancestors("a"));
    }

    private static readonly DateTimeOffset T0 = new(2026, 1, 1, 10, 0, 0, TimeSpan.Zero);

    private static ChangeRecorded Update(int minute, params (string Name, object? Value)[] fields) => new()
    {
        EventId = Guid.NewGuid(), SchemaVersion = 1, UserId = "alice", AppId = "app", Table = "scenes", RecordId = "home",
        Op = ChangeOp.Update,
        Fields = fields.ToDictionary(f => f.Name, f => new FieldChange(JsonSerializer.SerializeToElement(f.Value), T0.AddMinutes(minute))),
        ReceivedAt = T0.AddMinutes(minute), FutureLimit = T0.AddHours(1), CommitTx = 10 + minute, CommitIndex = 0, BatchIndex = 0,
    };

    private static string StateOf(params ChangeRecorded[] changes)
    {
        var view = RecordView.Create(changes[0]);
        foreach (var change in changes) view.Apply(change);
        return string.Join(";", LiveState.Of(view).OrderBy(f => f.Name, StringComparer.Ordinal)
            .Select(f => $"{f.Name}={f.Value.GetRawText()}@{f.Write.Stamp.Minute}"));
    }

    [Fact]
    public void A_later_key_path_write_changes_only_its_part_of_the_object()
    {
        var state = StateOf(Update(1, ("wallpaper", new { kind = "predefined", id = "forest" })), Update(2, ("wallpaper.id", "lake")));
        Assert.Equal("""wallpaper={"kind":"predefined","id":"lake"}@2""", state);
    }

    [Fact]
    public void A_later_whole_object_write_supersedes_older_key_path_writes()
    {
        var state = StateOf(Update(1, ("wallpaper.id", "lake")), Update(2, ("wallpaper", new { kind = "generated" })));
        Assert.Equal("""wallpaper={"kind":"generated"}@2""", state);
    }

    [Fact]
    public void Deeper_writes_apply_after_shallower_ones_and_a_path_alone_makes_its_object()
    {
        var state = StateOf(Update(1, ("a.b", new { c = 1, d = 1 })), Update(2, ("a.b.c", 2)), Update(3, ("x.y", true)));
        Assert.Equal("""a={"b":{"c":2,"d":1}}@2;x={"y":true}@3""", state);
    }

    [Fact]
    public void Within_one_change_the_deeper_name_applies_last_as_Dexie_does()
    {
        var state = StateOf(Update(1, ("a", new { b = 1 }), ("a.b", 2)));
        Assert.Equal("""a={"b":2}@1""", state);
    }
}
