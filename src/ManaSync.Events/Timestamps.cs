using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace ManaSync.Events;

/// <summary>
/// RFC 3339 timestamps on the wire. They are compared as instants, never as strings, and written
/// back in UTC with millisecond precision, or finer when the client sent finer.
/// </summary>
public static partial class Timestamps
{
    [GeneratedRegex(@"^(\d{4}-\d{2}-\d{2})(?:[Tt ](\d{2}:\d{2}(?::\d{2})?)(?:\.(\d{1,9}))?)?([Zz]|[+-]\d{2}:?\d{2})?$")]
    private static partial Regex Rfc3339();

    public static bool TryParse(string? text, out DateTimeOffset instant)
    {
        instant = default;
        if (text is null) return false;
        var match = Rfc3339().Match(text);
        if (!match.Success) return false;
        // .NET reads at most 7 fractional digits (100 ns); finer digits carry nothing it can keep.
        var fraction = match.Groups[3].Success ? "." + match.Groups[3].Value[..Math.Min(7, match.Groups[3].Length)] : "";
        var time = match.Groups[2].Success ? "T" + match.Groups[2].Value + fraction : "";
        var normalized = match.Groups[1].Value + time + match.Groups[4].Value;
        return DateTimeOffset.TryParse(normalized, CultureInfo.InvariantCulture,
            DateTimeStyles.AssumeUniversal, out instant);
    }

    public static bool TryRead(JsonElement element, out DateTimeOffset instant)
    {
        instant = default;
        return element.ValueKind == JsonValueKind.String && TryParse(element.GetString(), out instant);
    }

    public static string Format(DateTimeOffset instant)
    {
        // All 7 fractional digits (100 ns), then trailing zeros dropped down to milliseconds.
        var text = instant.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff", CultureInfo.InvariantCulture);
        var length = text.Length;
        while (length > text.Length - 4 && text[length - 1] == '0') length--;
        return string.Concat(text.AsSpan(0, length), "Z");
    }

    public static JsonElement ToJson(DateTimeOffset instant) => JsonSerializer.SerializeToElement(Format(instant));
}
