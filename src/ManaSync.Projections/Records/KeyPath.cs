using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace ManaSync.Projections.Records;

/// <summary>
/// Field names with dots are key paths into nested objects ("wallpaper.source.id"), as Dexie's
/// <c>update</c> reads them: deployed clients send them, and apply incoming fields the same way.
/// </summary>
public static class KeyPath
{
    public const char Separator = '.';

    public static bool IsPath(string name) => name.Contains(Separator);

    /// <summary>The top-level field a name belongs to ("wallpaper" for "wallpaper.source.id").</summary>
    public static string Root(string name) => name.IndexOf(Separator) is var at and >= 0 ? name[..at] : name;

    public static int Depth(string name) => name.Count(c => c == Separator);

    /// <summary>The names of the objects that contain a path: "a" and "a.b" for "a.b.c", none for "a".</summary>
    public static IEnumerable<string> Ancestors(string name)
    {
        for (var at = name.IndexOf(Separator); at >= 0; at = name.IndexOf(Separator, at + 1))
            yield return name[..at];
    }

    /// <summary>
    /// Sets the value at a path below <paramref name="target"/> the way Dexie does: a missing step, or
    /// one holding a value JavaScript counts as false (null, false, 0, ""), becomes an empty object; a
    /// step through any other value that is not an object or array changes nothing (JavaScript ignores
    /// writes to properties of primitives); a numeric step into an array addresses an element.
    /// </summary>
    public static void Set(JsonObject target, string path, JsonNode? value) => Walk(target, path, value, remove: false);

    /// <summary>Removes the value at a path (Dexie's update with <c>undefined</c>): an array element is spliced out.</summary>
    public static void Remove(JsonObject target, string path) => Walk(target, path, null, remove: true);

    /// <summary>The value at a path of a JSON value, or null when a step is missing.</summary>
    public static JsonElement? Get(JsonElement root, IEnumerable<string> steps)
    {
        var at = root;
        foreach (var step in steps)
        {
            if (at.ValueKind == JsonValueKind.Object && at.TryGetProperty(step, out var member)) at = member;
            else if (at.ValueKind == JsonValueKind.Array && ArrayIndex(step) is { } index && index < at.GetArrayLength()) at = at[index];
            else return null;
        }
        return at;
    }

    private static void Walk(JsonNode container, string path, JsonNode? value, bool remove)
    {
        var steps = path.Split(Separator);
        for (var i = 0; i < steps.Length - 1; i++)
        {
            var inner = Child(container, steps[i], out var present);
            if (!present || IsFalsy(inner))
            {
                inner = new JsonObject();
                if (!SetChild(container, steps[i], inner)) return;
            }
            if (inner is not (JsonObject or JsonArray)) return;
            container = inner!;
        }

        var last = steps[^1];
        if (remove) RemoveChild(container, last);
        else SetChild(container, last, value);
    }

    private static JsonNode? Child(JsonNode container, string step, out bool present)
    {
        present = false;
        if (container is JsonObject obj) return (present = obj.TryGetPropertyValue(step, out var child)) ? child : null;
        if (container is JsonArray array && ArrayIndex(step) is { } index && index < array.Count)
        {
            present = true;
            return array[index];
        }
        return null;
    }

    /// <returns>false when the container cannot hold the step (a named property of an array, which JSON cannot carry).</returns>
    private static bool SetChild(JsonNode container, string step, JsonNode? value)
    {
        if (container is JsonObject obj)
        {
            obj[step] = value;
            return true;
        }
        if (container is not JsonArray array || ArrayIndex(step) is not { } index) return false;
        while (array.Count <= index) array.Add(null);
        array[index] = value;
        return true;
    }

    private static void RemoveChild(JsonNode container, string step)
    {
        if (container is JsonObject obj) obj.Remove(step);
        else if (container is JsonArray array && ArrayIndex(step) is { } index && index < array.Count) array.RemoveAt(index);
    }

    private static int? ArrayIndex(string step) =>
        step.Length > 0 && step.All(char.IsAsciiDigit) && int.TryParse(step, NumberStyles.None, CultureInfo.InvariantCulture, out var index)
            ? index
            : null;

    /// <summary>JavaScript's false values among JSON's: null, false, 0 and the empty string.</summary>
    private static bool IsFalsy(JsonNode? node) => node switch
    {
        null => true,
        JsonValue value => value.GetValueKind() switch
        {
            JsonValueKind.False or JsonValueKind.Null => true,
            JsonValueKind.Number => double.Parse(value.ToJsonString(), NumberStyles.Float, CultureInfo.InvariantCulture) == 0,
            JsonValueKind.String => value.GetValue<string>().Length == 0,
            _ => false,
        },
        _ => false,
    };
}
