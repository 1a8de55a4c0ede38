using System.Text.Json;
using System.Text.Json.Nodes;

namespace ManaSync.Projections.Records;

/// <summary>A top-level field as clients hold it, with the key-path writes that outlived its own folded in.</summary>
/// <param name="Write">The latest of the writes that make up the value: its stamp is the field's updatedAt.</param>
public readonly record struct LiveField(string Name, JsonElement Value, Write Write);

/// <summary>
/// Reads a record view as deployed clients hold the record. A write to a key path ("a.b") lives as
/// long as no write to one of its ancestors ("a") is later; the live ones are applied onto their
/// top-level field, shallow before deep, exactly as Dexie's <c>update</c> would apply them.
/// </summary>
public static class LiveState
{
    public static IReadOnlyList<LiveField> Of(RecordView view)
    {
        var live = new List<LiveField>(view.Fields.Count);
        var paths = false;
        foreach (var (name, field) in view.Fields)
        {
            if (!view.IsAlive(field.Write)) continue;
            if (KeyPath.IsPath(name))
            {
                if (Superseded(view, name, field.Write)) continue;
                paths = true;
            }
            live.Add(new LiveField(name, field.Value, field.Write));
        }
        return paths
            ? live.GroupBy(field => KeyPath.Root(field.Name), StringComparer.Ordinal).Select(Fold).OfType<LiveField>().ToList()
            : live;
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
        return Of(view).Where(live => live.Name == root).Select(live => KeyPath.Get(live.Value, name.Split(KeyPath.Separator).Skip(1)))
            .FirstOrDefault();
    }

    private static bool Superseded(RecordView view, string name, Write write) =>
        KeyPath.Ancestors(name).Any(ancestor => view.Fields.TryGetValue(ancestor, out var field) && field.Write.Beats(write));

    private static LiveField? Fold(IGrouping<string, LiveField> field)
    {
        var holder = new JsonObject();
        Write? latest = null;
        foreach (var (name, stored, write) in field.OrderBy(entry => KeyPath.Depth(entry.Name)).ThenBy(entry => entry.Name, StringComparer.Ordinal))
        {
            var value = JsonNode.Parse(stored.GetRawText());
            if (name == field.Key) holder[name] = value;
            else KeyPath.Set(holder, name, value);
            if (latest is null || write.Beats(latest)) latest = write;
        }
        return holder.TryGetPropertyValue(field.Key, out var folded)
            ? new LiveField(field.Key, JsonSerializer.SerializeToElement(folded), latest!)
            : null;
    }
}
