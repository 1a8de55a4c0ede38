using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using ManaSync.Projections.Records;

namespace ManaSync.Testing;

/// <summary>
/// The deployed web client's sync engine (the Go service's clients, which must keep working unchanged),
/// rule for rule, over an in-memory store instead of IndexedDB: how its Dexie hooks turn local writes
/// into pending changes, how it picks cursors, pushes and pulls, and how it applies what the server
/// sends. Tests drive it to see the records a real device ends up with.
/// </summary>
/// <remarks>
/// Its rules, as the client has them:
/// <list type="bullet">
/// <item>Each table keeps its own cursor, starting at <see cref="InitialCursor"/>. A push (and a stream)
/// sends the string minimum over the tables' cursors, starting from the current ISO time, and afterwards
/// sets every table's cursor to the push's syncedUntil.</item>
/// <item>A pull reads each table page by page and saves the table's cursor after its last page; a request
/// that fails aborts the pull, keeping the cursors of the tables already read.</item>
/// <item>An update turns every modified property (key paths included) into <c>{value, updatedAt}</c>; a
/// property set to undefined loses its value in JSON.stringify. spaceId, userId and authorId are not sent as
/// fields; the change carries the record's spaceId from before the update.</item>
/// <item>Incoming changes: one with a top-level deletedAt (or op delete) is a delete only, skipped for a row
/// the device lacks; an insert is stored with put (names taken literally) when the row is missing, else merged
/// field by field against its data.updatedAt; an update is merged field by field (Dexie update: names are key
/// paths), or stored with put when the row is missing. Timestamps compare as strings.</item>
/// </list>
/// </remarks>
public sealed class DeployedClient(HttpClient http, string token, string userId, string appId, string clientId,
    IReadOnlyList<string> tables, Func<DateTimeOffset> clock)
{
    private readonly List<string> _tables = [.. tables];
    public const string InitialCursor = "1970-01-01T00:00:00.000Z";
    private const string FieldTimestamps = "__fieldTimestamps";
    private const int PushBatchSize = 200;

    /// <summary>A property set to undefined: JSON.stringify leaves it out.</summary>
    public static readonly JsonNode Undefined = JsonValue.Create("undefined")!;

    private readonly Dictionary<string, Dictionary<string, JsonObject>> _rows = tables.ToDictionary(t => t, _ => new Dictionary<string, JsonObject>());

    /// <summary>A client update that syncs one more table: it starts from the initial cursor.</summary>
    public void AddTable(string table)
    {
        _tables.Add(table);
        _rows[table] = [];
    }

    /// <summary>A cursor the device brought along, e.g. an RFC 3339 one from the Go service.</summary>
    public void RestoreCursor(string table, string cursor) => _cursors[table] = cursor;
    private readonly Dictionary<string, string> _cursors = [];
    private readonly List<JsonObject> _pending = [];

    public string ClientId => clientId;

    public string CursorOf(string table) => _cursors.GetValueOrDefault(table, InitialCursor);

    public int PendingCount => _pending.Count;

    /// <summary>The table's rows as the app shows them: data without the sync bookkeeping, by id.</summary>
    public SortedDictionary<string, string> Rows(string table) => new(
        _rows[table].ToDictionary(row => row.Key, row => Canonical(Without(row.Value, FieldTimestamps))), StringComparer.Ordinal);

    public JsonObject? Row(string table, string id) => _rows[table].GetValueOrDefault(id) is { } row ? Without(row, FieldTimestamps) : null;

    // ── Local writes, as the Dexie hooks record them ─────────────────────────

    public void Create(string table, JsonObject record)
    {
        var now = Now();
        var row = (JsonObject)record.DeepClone();
        row["userId"] ??= userId;
        row["spaceId"] ??= "_personal:" + userId;
        row["authorId"] ??= userId;
        row["visibility"] ??= "space";
        var stamps = new JsonObject();
        foreach (var (name, _) in row.Where(member => member.Key != "id")) stamps[name] = now;
        var data = (JsonObject)row.DeepClone();
        row[FieldTimestamps] = stamps;
        _rows[table][Id(row)] = row;
        _pending.Add(new JsonObject
        {
            ["table"] = table, ["id"] = Id(row), ["op"] = "insert", ["data"] = data, ["spaceId"] = row["spaceId"]!.DeepClone(),
        });
    }

    /// <summary>Dexie's <c>update(id, modifications)</c>; names may be key paths, values may be <see cref="Undefined"/>.</summary>
    public void Update(string table, string id, params (string Name, JsonNode? Value)[] modifications)
    {
        var row = _rows[table][id];
        var spaceIdBefore = row["spaceId"]?.GetValueKind() == System.Text.Json.JsonValueKind.String ? row["spaceId"]!.GetValue<string>() : null;
        var now = Now();
        var fields = new JsonObject();
        var stamps = (JsonObject)row[FieldTimestamps]!;
        foreach (var (name, value) in modifications)
        {
            if (name is "userId" or "spaceId" or "authorId") continue;
            fields[name] = ReferenceEquals(value, Undefined)
                ? new JsonObject { ["updatedAt"] = now }
                : new JsonObject { ["value"] = value?.DeepClone(), ["updatedAt"] = now };
            stamps[name] = now;
        }
        foreach (var (name, value) in modifications)
            if (ReferenceEquals(value, Undefined)) KeyPath.Remove(row, name);
            else KeyPath.Set(row, name, value?.DeepClone());

        var deletedAt = modifications.FirstOrDefault(m => m.Name == "deletedAt").Value;
        var softDelete = deletedAt is JsonValue text && !ReferenceEquals(text, Undefined) &&
                         text.GetValueKind() == System.Text.Json.JsonValueKind.String && text.GetValue<string>().Length > 0;
        var change = new JsonObject { ["table"] = table, ["id"] = id, ["op"] = softDelete ? "delete" : "update", ["fields"] = fields };
        if (softDelete) change["deletedAt"] = deletedAt!.DeepClone();
        if (spaceIdBefore is not null) change["spaceId"] = spaceIdBefore;
        _pending.Add(change);
    }

    /// <summary>What the app does at login once it knows the personal space: rewrite the sentinel spaceId.</summary>
    public void ReconcileSentinels(string personalSpaceId)
    {
        foreach (var table in _tables)
            foreach (var id in _rows[table].Where(row => row.Value["spaceId"]?.ToString() == "_personal:" + userId).Select(row => row.Key).ToList())
                Update(table, id, ("spaceId", personalSpaceId));
    }

    // ── Sync ──────────────────────────────────────────────────────────────────

    /// <summary>Pushes the oldest pending batch, if any. A refused batch stays pending, to be sent again next time.</summary>
    public async Task<Reply?> PushAsync()
    {
        if (_pending.Count == 0) return null;
        var batch = _pending.Take(PushBatchSize).ToList();
        var body = new JsonObject
        {
            ["clientId"] = clientId, ["since"] = OldestCursor(), ["schemaVersion"] = 1,
            ["changes"] = new JsonArray(batch.Select(change => (JsonNode)change.DeepClone()).ToArray()),
        };
        var reply = await SendAsync(HttpMethod.Post, $"/sync/{appId}", body.ToJsonString());
        if (reply.Status != HttpStatusCode.OK) return reply;
        Apply(reply.Json["serverChanges"]!.AsArray());
        if (reply.Json["syncedUntil"]?.GetValue<string>() is { } syncedUntil)
            foreach (var table in _tables) _cursors[table] = syncedUntil;
        _pending.RemoveRange(0, batch.Count);
        return reply;
    }

    /// <summary>Pushes until nothing is pending; fails on the first refused batch.</summary>
    public async Task PushAllAsync()
    {
        while (await PushAsync() is { } reply) reply.AssertStatus(HttpStatusCode.OK);
    }

    /// <summary>Pulls every table. <paramref name="failing"/> tables fail at the network: the pull stops there.</summary>
    public async Task PullAsync(params string[] failing)
    {
        foreach (var table in _tables)
        {
            if (failing.Contains(table)) return;
            var cursor = CursorOf(table);
            while (true)
            {
                var reply = await SendAsync(HttpMethod.Get,
                    $"/sync/{appId}/pull?collection={Uri.EscapeDataString(table)}&since={Uri.EscapeDataString(cursor)}", null);
                if (reply.Status != HttpStatusCode.OK) break;
                Apply(reply.Json["serverChanges"]!.AsArray());
                if (reply.Json["syncedUntil"]?.GetValue<string>() is not { } next) break;
                cursor = next;
                if (!reply.HasMore) break;
            }
            _cursors[table] = cursor;
        }
    }

    /// <summary>The string minimum over the tables' cursors, starting from the current ISO time (the device's clock).</summary>
    public string OldestCursor()
    {
        var oldest = Now();
        foreach (var table in _tables)
            if (string.CompareOrdinal(CursorOf(table), oldest) < 0) oldest = CursorOf(table);
        return oldest;
    }

    // ── Applying what the server sends ────────────────────────────────────────

    public void Apply(JsonArray changes)
    {
        foreach (var change in changes.Select(node => node!.AsObject()).Where(IsValid))
        {
            var table = change["table"]!.GetValue<string>();
            if (!_rows.TryGetValue(table, out var rows)) continue;
            var id = change["id"]!.GetValue<string>();
            rows.TryGetValue(id, out var existing);
            var op = change["op"]!.GetValue<string>();
            var deletedAt = change["deletedAt"]?.GetValue<string>();

            if (!string.IsNullOrEmpty(deletedAt) || op == "delete")
            {
                if (existing is null) continue;
                if (string.IsNullOrEmpty(deletedAt))
                {
                    rows.Remove(id);
                    continue;
                }
                var stamps = Stamps(existing);
                var local = stamps["deletedAt"]?.GetValue<string>() ?? existing["deletedAt"]?.ToString() ?? "";
                if (string.CompareOrdinal(deletedAt, local) < 0) continue;
                existing["deletedAt"] = deletedAt;
                existing["updatedAt"] = deletedAt;
                stamps["deletedAt"] = deletedAt;
                stamps["updatedAt"] = deletedAt;
            }
            else if (op == "insert")
            {
                var data = change["data"]?.AsObject() ?? change;
                var recordTime = data["updatedAt"]?.ToString() ?? data["createdAt"]?.ToString() ?? Now();
                if (existing is null)
                {
                    var row = (JsonObject)data.DeepClone();
                    row["id"] = id;
                    row[FieldTimestamps] = new JsonObject(data.Where(m => m.Key is not ("id" or FieldTimestamps))
                        .Select(m => KeyValuePair.Create(m.Key, (JsonNode?)recordTime)));
                    rows[id] = row;
                    continue;
                }
                MergeFields(existing, data.Where(m => m.Key is not ("id" or FieldTimestamps)).Select(m => (m.Key, m.Value, recordTime)));
            }
            else if (op == "update" && change["fields"] is JsonObject fields)
            {
                var incoming = fields.Select(f => (f.Key, f.Value!["value"], f.Value!["updatedAt"]?.GetValue<string>()));
                if (existing is null)
                {
                    var fallback = Now();
                    var row = new JsonObject { ["id"] = id };
                    var stamps = new JsonObject();
                    foreach (var (name, value, at) in incoming)
                    {
                        row[name] = value?.DeepClone();
                        stamps[name] = at ?? fallback;
                    }
                    row[FieldTimestamps] = stamps;
                    rows[id] = row;
                    continue;
                }
                MergeFields(existing, incoming.Select(f => (f.Key, f.Item2, f.Item3 ?? "")));
            }
        }
    }

    /// <summary>Field by field, the incoming value wins when its time is not older (string comparison); names are key paths.</summary>
    private static void MergeFields(JsonObject existing, IEnumerable<(string Name, JsonNode? Value, string At)> incoming)
    {
        var stamps = Stamps(existing);
        var localUpdatedAt = existing["updatedAt"]?.ToString() ?? "";
        var updates = new List<(string Name, JsonNode? Value)>();
        foreach (var (name, value, at) in incoming)
        {
            if (string.CompareOrdinal(at, stamps[name]?.GetValue<string>() ?? localUpdatedAt) < 0) continue;
            updates.Add((name, value?.DeepClone()));
            stamps[name] = at;
        }
        foreach (var (name, value) in updates) KeyPath.Set(existing, name, value);
    }

    private static bool IsValid(JsonObject change) =>
        change["table"] is JsonValue table && table.GetValueKind() == System.Text.Json.JsonValueKind.String && table.GetValue<string>().Length > 0 &&
        change["id"] is JsonValue id && id.GetValueKind() == System.Text.Json.JsonValueKind.String && id.GetValue<string>().Length > 0 &&
        change["op"]?.ToString() is "insert" or "update" or "delete" &&
        (change["fields"] is null || change["fields"] is JsonObject fields && fields.All(f => f.Value is JsonObject field && field.ContainsKey("value"))) &&
        (change["data"] is null || change["data"] is JsonObject);

    // ── Helpers ───────────────────────────────────────────────────────────────

    private async Task<Reply> SendAsync(HttpMethod method, string path, string? body)
    {
        using var request = new HttpRequestMessage(method, path);
        if (body is not null) request.Content = new StringContent(body, Encoding.UTF8, "application/json");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        request.Headers.Add("X-Client-Id", clientId);
        using var response = await http.SendAsync(request);
        return new Reply(response.StatusCode, await response.Content.ReadAsStringAsync());
    }

    private string Now() => Iso(clock());

    /// <summary>JavaScript's Date.toISOString(): UTC, always milliseconds.</summary>
    public static string Iso(DateTimeOffset instant) => instant.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'");

    private static string Id(JsonObject row) => row["id"]!.GetValue<string>();

    private static JsonObject Stamps(JsonObject row) => row[FieldTimestamps] as JsonObject ?? (JsonObject)(row[FieldTimestamps] = new JsonObject());

    private static JsonObject Without(JsonObject row, string name)
    {
        var copy = (JsonObject)row.DeepClone();
        copy.Remove(name);
        return copy;
    }

    /// <summary>JSON with members sorted at every level, so two rows with the same content compare equal.</summary>
    public static string Canonical(JsonNode? node) => node switch
    {
        JsonObject obj => "{" + string.Join(",", obj.OrderBy(m => m.Key, StringComparer.Ordinal)
            .Select(m => JsonValue.Create(m.Key).ToJsonString() + ":" + Canonical(m.Value))) + "}",
        JsonArray array => "[" + string.Join(",", array.Select(Canonical)) + "]",
        null => "null",
        _ => node.ToJsonString(),
    };
}
