using System.Reflection;
using System.Text;
using System.Text.Json;
using CsCheck;
using ManaSync.Projections.Records;
using Weasel.Core;
using Xunit;

namespace ManaSync.Core.Tests.Records;

/// <summary>
/// Record views survive the trip through the database's JSON, each write stored once. One test fills a view by
/// reflection, so a property added later that the hand-written converter (<see cref="RecordViewJson"/>) does not
/// store fails here; a property of a type the filler does not know fails too, until it is taught.
/// </summary>
public sealed class RecordViewJsonTests
{
    // As Marten is configured in MartenSetup.
    private static readonly Marten.Services.SystemTextJsonSerializer Serializer = new() { EnumStorage = EnumStorage.AsString, Casing = Casing.CamelCase };

    [Fact]
    public void Any_merged_view_reads_back_exactly_as_it_was_written()
    {
        MergePropertyTests.Change.List[1, 12].Sample(events =>
        {
            var view = RecordView.Create(events[0]);
            foreach (var change in events) view.Apply(change);

            var json = Serializer.ToJson(view);
            var read = Serializer.FromJson<RecordView>(new MemoryStream(Encoding.UTF8.GetBytes(json)));

            Assert.Equal(Describe(view), Describe(read));
            var distinctWrites = view.Writes().Distinct().Count();
            Assert.Equal(distinctWrites, JsonDocument.Parse(json).RootElement.GetProperty("writes").GetArrayLength());
        }, iter: 1000);
    }

    [Fact]
    public void A_view_stored_with_its_writes_inline_still_reads()
    {
        const string write = """
            {"stamp":"2026-01-01T10:00:00+00:00","receivedAt":"2026-01-01T10:00:01+00:00","batchIndex":0,
             "eventId":"0193c0de-0000-7000-8000-000000000001","clientId":"phone","userId":"alice",
             "position":{"tx":7,"index":0},"schemaVersion":1,"actor":null}
            """;
        var json = $$$$"""
            {"id":"k","scope":"u:alice","appId":"todo","tableName":"tasks","recordId":"t1","spaceId":null,
             "positionTx":7,"positionIndex":0,"born":{"tx":7,"index":0},"tombstone":null,
             "inserted":{{{{write}}}},"fields":{"title":{"value":"Buy milk","write":{{{{write}}}}}}}
            """;

        var view = Serializer.FromJson<RecordView>(new MemoryStream(Encoding.UTF8.GetBytes(json)));

        Assert.Equal("Buy milk", view.Fields["title"].Value.GetString());
        Assert.Equal(view.Inserted, view.Fields["title"].Write);
        Assert.Equal(new Position(7, 0), view.Fields["title"].Write.Position);
        Assert.Equal("phone", view.Inserted!.ClientId);
        Assert.Null(view.Tombstone);
        Assert.Equal(new Position(7, 0), view.Born);
    }

    [Fact]
    public void A_view_that_moved_away_reads_back_with_where_it_went()
    {
        var events = MergePropertyTests.Change.List[2, 6].Single();
        var view = RecordView.Create(events[0]);
        foreach (var change in events) view.Apply(change);
        view.Apply(events[^1] with { RecordScope = "s:elsewhere", MovedFrom = view.Scope, CommitTx = 99 });

        var read = Serializer.FromJson<RecordView>(new MemoryStream(Encoding.UTF8.GetBytes(Serializer.ToJson(view))));

        Assert.Equal("s:elsewhere", read.MovedTo);
        Assert.Equal(Describe(view), Describe(read));
    }

    /// <summary>Keys written by hand are the ones JsonSerializer wrote before: views are stored under them.</summary>
    [Fact]
    public void Record_keys_are_the_json_arrays_they_always_were()
    {
        var part = Gen.OneOf(Gen.String[Gen.Char["a-z0-9_:.@-"], 0, 12], Gen.String, Gen.String[Gen.Char, 0, 6]);
        Gen.Select(part, part, part, part).Sample((scope, app, table, id) =>
            Assert.Equal(JsonSerializer.Serialize(new[] { scope, app, table, id }), RecordKey.For(scope, app, table, id)), iter: 2000);
    }

    private static string Describe(RecordView view) => string.Join("\n",
        view.Fields.OrderBy(f => f.Key, StringComparer.Ordinal).Select(f => $"{f.Key}={f.Value.Value.GetRawText()} {f.Value.Write}")
            .Append($"inserted={view.Inserted} tombstone={view.Tombstone} born={view.Born} position={view.Position}")
            .Append($"placed as {view.PlacedAs} by {view.PlacedBy}, moved to {view.MovedTo} by {view.MovedAway}")
            .Append($"{view.Id} {view.Scope} {view.AppId} {view.TableName} {view.RecordId} {view.SpaceId}"));

    private static readonly DateTimeOffset T0 = new(2026, 1, 1, 10, 0, 0, TimeSpan.Zero);

    private static IEnumerable<PropertyInfo> Stored(Type type) =>
        type.GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(property => property.CanWrite);

    [Fact]
    public void Every_property_of_a_view_reads_back_as_it_was_written()
    {
        var view = new RecordView();
        var seed = 1;
        foreach (var property in Stored(typeof(RecordView))) property.SetValue(view, Fill(property.PropertyType, seed++));

        var read = Serializer.FromJson<RecordView>(new MemoryStream(Encoding.UTF8.GetBytes(Serializer.ToJson(view))));

        Assert.NotEmpty(Stored(typeof(RecordView)));
        foreach (var property in Stored(typeof(RecordView)))
        {
            var written = JsonSerializer.Serialize(property.GetValue(view));
            Assert.NotEqual(JsonSerializer.Serialize(Default(property.PropertyType)), written);
            Assert.True(written == JsonSerializer.Serialize(property.GetValue(read)), $"{property.Name} did not survive: wrote {written}");
        }
    }

    private static object? Default(Type type) =>
        type.IsValueType && Nullable.GetUnderlyingType(type) is null ? Activator.CreateInstance(type) :
        type == typeof(Dictionary<string, FieldState>) ? new Dictionary<string, FieldState>() : null;

    /// <summary>A value unlike the type's default, different for each seed.</summary>
    private static object Fill(Type type, int seed)
    {
        if (Nullable.GetUnderlyingType(type) is { } inner) return Fill(inner, seed);
        if (type == typeof(string)) return $"value-{seed}";
        if (type == typeof(int)) return 10 + seed;
        if (type == typeof(long)) return 1000L + seed;
        if (type == typeof(Guid)) return new Guid(seed, 0, 0, new byte[8]);
        if (type == typeof(DateTimeOffset)) return T0.AddMinutes(seed);
        if (type == typeof(JsonElement)) return JsonSerializer.SerializeToElement(new { kind = "ai", seed });
        if (type == typeof(Position)) return new Position(100 + seed, seed);
        if (type == typeof(Dictionary<string, FieldState>))
            return new Dictionary<string, FieldState>(StringComparer.Ordinal) { [$"field-{seed}"] = (FieldState)Fill(typeof(FieldState), seed + 50) };
        if (type == typeof(Write) || type == typeof(FieldState))
        {
            var constructor = type.GetConstructors().MaxBy(c => c.GetParameters().Length)!;
            return constructor.Invoke(constructor.GetParameters().Select((parameter, i) => Fill(parameter.ParameterType, seed * 20 + i)).ToArray());
        }
        throw new NotSupportedException($"Teach this test to fill a {type}: a new property of that type would go untested.");
    }
}
