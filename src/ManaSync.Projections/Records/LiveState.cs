using System.Text.Json;
using System.Text.Json.Nodes;

namespace ManaSync.Projections.Records;

/// <summary>A top-level field as clients hold it, with the key-path writes that outlived its own folded in.</summary>
/// <param name="Write">The latest of the writes that make up the value: its stamp is the field's updatedAt.</param>
public sealed record LiveField(string Name, JsonElement Value, Write Write);

/// <summary>
/// Reads a record view as deployed clients hold the record. A write to a key path ("a.b") lives as
/// long as no write to one of its ancestors ("a") is later; the live ones are applied onto their
/// top-level field, shallow before deep, exactly as Dexie's <c>update</c> would apply them.
/// </summary>
public static class LiveState
{
    public static IReadOnlyList<LiveField> Of(RecordView view)
    {
        var live = view.Fields.Where(field => view.IsAlive(field.Value.Write) && !Superseded(view, field.Key, field.Value.Write)).ToList();
        if (!live.Any(field => KeyPath.IsPath(field.Key)))
            return live.Select(field => new LiveField(field.Key, field.Value.Value, field.Value.Write)).ToList();
        return live.GroupBy(field => KeyPath.Root(field.Key), StringComparer.Ordinal)
            .Select(Fold)
            .OfType<LiveField>()
            .ToList();
    }

    /// <summary>The write that decides the value at a name: its own latest write, or a later one to an ancestor.</summary>
    public static Write? DecidingWrite(RecordView view, string name) => !KeyPath.IsPath(name)
        ? view.Fields.TryGetValue(name, out var field) ? field.Write : null
        : KeyPath.Ancestors(name).Append(name)
            .Select(candidate => view.Fields.TryGetValue(candidate, out var field) ? field.Write : null)
            .OfType<Write>()
            .Aggregate((Write?)null, (latest, write) => latest is null || write.Beats(latest) ? write : latest);

    /// <summary>The value clients hold at a name (a key path reads into its top-level field), or null when there is none.</summary>
    public static JsonElement? ValueAt(RecordView view, string name)
    {
        var root = KeyPath.Root(name);
        var field = Of(view).FirstOrDefault(live => live.Name == root);
        return field is null ? null : KeyPath.Get(field.Value, name.Split(KeyPath.Separator).Skip(1));
    }

    private static bool Superseded(RecordView view, string name, Write write) =>
        KeyPath.Ancestors(name).Any(ancestor => view.Fields.TryGetValue(ancestor, out var field) && field.Write.Beats(write));

    private static LiveField? Fold(IGrouping<string, KeyValuePair<string, FieldState>> field)
    {
        var holder = new JsonObject();
        Write? latest = null;
        foreach (var (name, state) in field.OrderBy(entry => KeyPath.Depth(entry.Key)).ThenBy(entry => entry.Key, StringComparer.Ordinal))
        {
            var value = JsonNode.Parse(state.Value.GetRawText());
            if (name == field.Key) holder[name] = value;
            else KeyPath.Set(holder, name, value);
            if (latest is null || state.Write.Beats(latest)) latest = state.Write;
        }
        return holder.TryGetPropertyValue(field.Key, out var folded)
            ? new LiveField(field.Key, JsonSerializer.SerializeToElement(folded), latest!)
            : null;
    }
}
