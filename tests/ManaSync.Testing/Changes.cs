namespace ManaSync.Testing;

/// <summary>Builds changes in the wire format of PROTOCOL §3.</summary>
public static class Changes
{
    public static Dictionary<string, object?> Insert(string table, string id, object data, Guid? eventId = null) =>
        With(eventId, new() { ["table"] = table, ["id"] = id, ["op"] = "insert", ["data"] = data });

    public static Dictionary<string, object?> Update(string table, string id, string field, object? value, string updatedAt,
        Guid? eventId = null) =>
        With(eventId, new()
        {
            ["table"] = table, ["id"] = id, ["op"] = "update",
            ["fields"] = new Dictionary<string, object?> { [field] = new { value, updatedAt } },
        });

    public static Dictionary<string, object?> Delete(string table, string id, string? deletedAt = null, Guid? eventId = null)
    {
        var change = new Dictionary<string, object?> { ["table"] = table, ["id"] = id, ["op"] = "delete" };
        if (deletedAt is not null) change["deletedAt"] = deletedAt;
        return With(eventId, change);
    }

    public static object Batch(params object[] changes) => new { changes };

    public static object BatchSince(string since, params object[] changes) => new { since, changes };

    private static Dictionary<string, object?> With(Guid? eventId, Dictionary<string, object?> change)
    {
        if (eventId is not null) change["eventId"] = eventId.ToString();
        return change;
    }
}
