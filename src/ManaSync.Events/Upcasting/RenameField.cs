using System.Text.Json;

namespace ManaSync.Events.Upcasting;

/// <summary>
/// The worked example of docs/schema-evolution.md: from version <paramref name="from"/> on, a table's
/// field is called <paramref name="newName"/> instead of <paramref name="oldName"/>. Older changes are
/// read as if they had used the new name, in field updates and insert snapshots alike.
/// </summary>
public sealed class RenameField(int from, string appId, string table, string oldName, string newName) : IChangeUpcaster
{
    public int From => from;

    public ChangeRecorded Upcast(ChangeRecorded change)
    {
        if (change.AppId != appId || change.Table != table) return change;
        return change with
        {
            Fields = change.Fields?.ToDictionary(field => field.Key == oldName ? newName : field.Key, field => field.Value),
            Data = change.Data is { ValueKind: JsonValueKind.Object } data ? Rename(data) : change.Data,
        };
    }

    private JsonElement Rename(JsonElement data)
    {
        var renamed = new Dictionary<string, JsonElement>();
        foreach (var member in data.EnumerateObject()) renamed[member.Name == oldName ? newName : member.Name] = member.Value;
        return JsonSerializer.SerializeToElement(renamed);
    }
}
