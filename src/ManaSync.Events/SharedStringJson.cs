using System.Collections.Concurrent;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Unicode;

namespace ManaSync.Events;

/// <summary>
/// Reads an id that nearly every event repeats (user, app, table, client, scope) as one shared string: a rebuild
/// reads millions of events and keeps each winning write's ids in memory, and a copy per event was one more young
/// object for every garbage collection to move, while it stops the requests' threads too (docs/benchmarks.md
/// "Rebuild"). The first <see cref="Capacity"/> distinct ids are shared; later ones are read as usual.
/// </summary>
public sealed class SharedStringJson : JsonConverter<string>
{
    public const int Capacity = 4096;

    /// <summary>Longer values are read as usual: ids are short.</summary>
    private const int MaxChars = 128;

    private static readonly ConcurrentDictionary<string, string> Known = new(StringComparer.Ordinal);
    private static readonly ConcurrentDictionary<string, string>.AlternateLookup<ReadOnlySpan<char>> KnownByChars =
        Known.GetAlternateLookup<ReadOnlySpan<char>>();

    public override string? Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        if (reader.TokenType != JsonTokenType.String || reader.HasValueSequence || reader.ValueIsEscaped || reader.ValueSpan.Length > MaxChars)
            return reader.GetString();
        Span<char> chars = stackalloc char[MaxChars];
        // Invalid UTF-8 is left to the reader, which refuses it.
        if (Utf8.ToUtf16(reader.ValueSpan, chars, out _, out var length, replaceInvalidSequences: false) != System.Buffers.OperationStatus.Done)
            return reader.GetString();
        if (KnownByChars.TryGetValue(chars[..length], out var known)) return known;
        var text = new string(chars[..length]);
        return Known.Count < Capacity ? Known.GetOrAdd(text, text) : text;
    }

    public override void Write(Utf8JsonWriter writer, string value, JsonSerializerOptions options) => writer.WriteStringValue(value);
}
