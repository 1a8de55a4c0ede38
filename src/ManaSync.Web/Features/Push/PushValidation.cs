using System.Text.Json;
using ManaSync.Events;
using ManaSync.Web.Features.WritePath;

namespace ManaSync.Web.Features.Push;

/// <summary>
/// Reads and checks a push body. Any fault rejects the whole batch, naming the change at fault, so a
/// client never has half a batch stored.
/// </summary>
public static class PushValidation
{
    public const int MaxChanges = 5000;
    public const int MaxDepth = 64;
    public const int MaxNameLength = 1024;

    private static readonly JsonDocumentOptions ParseOptions = new()
    {
        MaxDepth = MaxDepth,
        AllowDuplicateProperties = false,
    };

    /// <param name="maxSchemaVersion">The newest schema version the server understands (<see cref="Events.Upcasting.ChangeUpcasting"/>).</param>
    public static (PushBatch? Batch, PushFault? Fault) Read(ReadOnlyMemory<byte> body, PushOrigin origin, int maxSchemaVersion)
    {
        if (body.IsEmpty) return Fail("The body is empty; send {\"changes\": [...]}.");
        // The parser checks UTF-8 only where it reads; check all of it before any string is decoded.
        if (!System.Text.Unicode.Utf8.IsValid(body.Span)) return Fail("The body is not valid UTF-8.");

        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(body, ParseOptions);
        }
        catch (JsonException e)
        {
            return Fail($"The body is not valid JSON (UTF-8, nested at most {MaxDepth} deep, no duplicate keys): {Brief(e)}");
        }

        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object) return Fail("The body must be a JSON object.");
            foreach (var member in root.EnumerateObject().Where(member => member.Name != "changes"))
                if (FindUnstorable(member.Value, member.Name) is { } unstorable) return Fail(unstorable);

            if (!OptionalString(root, "clientId", out var bodyClientId)) return Fail("clientId must be a string.");
            if (!OptionalString(root, "since", out var since)) return Fail("since must be a string.");
            if (!ReadSchemaVersion(root, maxSchemaVersion, out var batchVersion, out var versionError)) return Fail(versionError!);
            if (!root.TryGetProperty("changes", out var changes) || changes.ValueKind != JsonValueKind.Array)
                return Fail("changes must be an array.");
            if (changes.GetArrayLength() > MaxChanges)
                return Fail($"A batch may hold at most {MaxChanges} changes; split it.");

            var clientId = string.IsNullOrEmpty(origin.ClientId) ? bodyClientId : origin.ClientId;
            origin = origin with { ClientId = string.IsNullOrEmpty(clientId) ? null : clientId };
            var read = new List<IncomingChange>(changes.GetArrayLength());
            var eventIds = new HashSet<Guid>();
            var index = 0;
            foreach (var element in changes.EnumerateArray())
            {
                var (change, error) = ReadChange(element, origin, batchVersion, maxSchemaVersion);
                if (error is not null) return Fail($"changes[{index}]: {error}", index);
                if (change!.EventId is { } eventId && !eventIds.Add(eventId))
                    return Fail($"changes[{index}]: eventId {eventId} appears twice in the batch.", index);
                read.Add(change);
                index++;
            }

            return (new PushBatch(origin.ClientId, since, read), null);
        }
    }

    private static (IncomingChange?, string?) ReadChange(JsonElement change, PushOrigin origin, int batchVersion, int maxSchemaVersion)
    {
        if (change.ValueKind != JsonValueKind.Object) return (null, "a change must be an object");
        if (FindUnstorable(change, "change") is { } unstorable) return (null, unstorable);

        if (!ReadName(change, "table", out var table, out var error)) return (null, error);
        if (!ReadName(change, "id", out var id, out error)) return (null, error);
        if (!OptionalString(change, "op", out var opText) ||
            opText is not ("insert" or "update" or "delete"))
            return (null, "op must be one of insert, update, delete");

        Guid? eventId = null;
        if (!OptionalString(change, "eventId", out var eventIdText)) return (null, "eventId must be a UUID string");
        if (eventIdText is not null)
        {
            if (!Guid.TryParse(eventIdText, out var parsed) || parsed == Guid.Empty)
                return (null, "eventId must be a UUID");
            eventId = parsed;
        }

        if (!ReadSchemaVersion(change, maxSchemaVersion, out var version, out error)) return (null, error);
        if (version == 0) version = batchVersion;

        var fields = (Dictionary<string, FieldChange>?)null;
        if (Present(change, "fields") is { } fieldsElement)
        {
            if (fieldsElement.ValueKind != JsonValueKind.Object) return (null, "fields must be an object");
            fields = new Dictionary<string, FieldChange>(StringComparer.Ordinal);
            foreach (var field in fieldsElement.EnumerateObject())
            {
                if (field.Value.ValueKind != JsonValueKind.Object ||
                    !field.Value.TryGetProperty("updatedAt", out var updatedAt) ||
                    !Timestamps.TryRead(updatedAt, out var stamp))
                    return (null, $"fields.{field.Name} must be {{\"value\", \"updatedAt\"}} with an RFC 3339 updatedAt");
                // Deployed clients clear a field by setting it to undefined, which JSON.stringify drops:
                // a missing value is a cleared field, stored as null (as the Go service did).
                var value = field.Value.TryGetProperty("value", out var sent) ? sent.Clone() : Infrastructure.WireJson.Null;
                fields[field.Name] = new FieldChange(value, stamp);
            }
        }

        var data = Present(change, "data");
        if (data is { ValueKind: not JsonValueKind.Object }) return (null, "data must be an object");

        DateTimeOffset? deletedAt = null;
        if (Present(change, "deletedAt") is { } deletedAtElement)
        {
            if (!Timestamps.TryRead(deletedAtElement, out var parsed)) return (null, "deletedAt must be an RFC 3339 timestamp");
            deletedAt = parsed;
        }

        if (!OptionalString(change, "spaceId", out var spaceId)) return (null, "spaceId must be a string");

        return (new IncomingChange
        {
            EventId = eventId,
            SchemaVersion = version,
            UserId = origin.UserId,
            AppId = origin.AppId,
            Table = table!,
            RecordId = id!,
            Op = opText switch { "insert" => ChangeOp.Insert, "update" => ChangeOp.Update, _ => ChangeOp.Delete },
            Fields = fields,
            Data = data?.Clone(),
            DeletedAt = deletedAt,
            SpaceId = SpaceOf(spaceId, data, fields),
            Actor = Present(change, "actor")?.Clone(),
            ClientId = origin.ClientId,
            ReceivedAt = origin.ReceivedAt,
        }, null);
    }

    private static string? SpaceOf(string? topLevel, JsonElement? data, Dictionary<string, FieldChange>? fields)
    {
        if (!string.IsNullOrEmpty(topLevel)) return topLevel;
        if (data?.TryGetProperty("spaceId", out var fromData) == true && fromData.ValueKind == JsonValueKind.String &&
            fromData.GetString() is { Length: > 0 } dataSpace)
            return dataSpace;
        if (fields?.TryGetValue("spaceId", out var fromFields) == true && fromFields.Value.ValueKind == JsonValueKind.String)
            return fromFields.Value.GetString() is { Length: > 0 } fieldSpace ? fieldSpace : null;
        return null;
    }

    /// <summary>Absent and 0 mean version 1; above the server's maximum is refused.</summary>
    private static bool ReadSchemaVersion(JsonElement owner, int maxSchemaVersion, out int version, out string? error)
    {
        version = 0;
        error = null;
        if (Present(owner, "schemaVersion") is not { } element) return true;
        if (element.ValueKind != JsonValueKind.Number || !element.TryGetInt32(out version) || version < 0)
            error = "schemaVersion must be a non-negative integer";
        else if (version > maxSchemaVersion)
            error = $"schemaVersion {version} is newer than this server supports ({maxSchemaVersion})";
        else
            return true;
        return false;
    }

    private static bool ReadName(JsonElement owner, string name, out string? value, out string? error)
    {
        error = null;
        if (!OptionalString(owner, name, out value) || string.IsNullOrEmpty(value))
            error = $"{name} must be a non-empty string";
        else if (value.Length > MaxNameLength)
            error = $"{name} may be at most {MaxNameLength} characters";
        return error is null;
    }

    /// <summary>The member, unless absent or null (clients send null for "not there").</summary>
    private static JsonElement? Present(JsonElement owner, string name) =>
        owner.TryGetProperty(name, out var value) && value.ValueKind != JsonValueKind.Null ? value : null;

    private static bool OptionalString(JsonElement owner, string name, out string? value)
    {
        value = null;
        if (Present(owner, name) is not { } element) return true;
        if (element.ValueKind != JsonValueKind.String) return false;
        value = element.GetString();
        return true;
    }

    /// <summary>
    /// The first value PostgreSQL's jsonb (and a JavaScript client) cannot hold: a string with \u0000
    /// or a lone surrogate, or a number no 64-bit float can represent.
    /// </summary>
    public static string? FindUnstorable(JsonElement element, string path)
    {
        switch (element.ValueKind)
        {
            case JsonValueKind.String when !Decodes(element.GetString, out var text) || !IsStorable(text):
                return $"{path}: strings may not contain \\u0000 or unpaired surrogates";
            case JsonValueKind.Number when !element.TryGetDouble(out var number) || !double.IsFinite(number):
                return $"{path}: numbers must fit a 64-bit float";
            case JsonValueKind.Object:
                foreach (var member in element.EnumerateObject())
                {
                    if (!Decodes(() => member.Name, out var name) || !IsStorable(name)) return $"{path}: member names may not contain \\u0000 or unpaired surrogates";
                    if (FindUnstorable(member.Value, path + "." + name) is { } found) return found;
                }
                break;
            case JsonValueKind.Array:
                var i = 0;
                foreach (var item in element.EnumerateArray())
                    if (FindUnstorable(item, $"{path}[{i++}]") is { } found) return found;
                break;
        }
        return null;
    }

    /// <summary>The parser refuses, on decoding, escapes that are not valid UTF-16 (a lone \\ud800).</summary>
    private static bool Decodes(Func<string?> decode, out string text)
    {
        try
        {
            text = decode() ?? "";
            return true;
        }
        catch (InvalidOperationException)
        {
            text = "";
            return false;
        }
    }

    private static bool IsStorable(string text)
    {
        for (var i = 0; i < text.Length; i++)
        {
            var c = text[i];
            if (c == '\0') return false;
            if (char.IsHighSurrogate(c) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1])) i++;
            else if (char.IsSurrogate(c)) return false;
        }
        return true;
    }

    private static string Brief(JsonException e) => e.Message.Split(" Path:")[0];

    private static (PushBatch?, PushFault) Fail(string message, int? index = null) => (null, new PushFault(message, index));
}

public sealed record PushFault(string Message, int? Index);
