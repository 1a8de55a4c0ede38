using System.Reflection;
using System.Text;
using System.Text.Json;
using ManaSync.Projections.Records;
using Weasel.Core;
using Xunit;

namespace ManaSync.Core.Tests.Records;

/// <summary>
/// Every property of a record view, and of the writes it holds, survives the database's JSON. The view is
/// filled by reflection, so a property added later that the hand-written converter (<see cref="RecordViewJson"/>)
/// does not store fails here; a property of a type the filler does not know fails too, until it is taught.
/// </summary>
public sealed class RecordViewRoundTripTests
{
    private static readonly Marten.Services.SystemTextJsonSerializer Serializer = new() { EnumStorage = EnumStorage.AsString, Casing = Casing.CamelCase };
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
