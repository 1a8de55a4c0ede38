using System.Text.Json;
using System.Text.Json.Serialization;

namespace ManaSync.Web.Infrastructure;

/// <summary>JSON as the clients expect it: camelCase, and absent optional members omitted, never null.</summary>
public static class WireJson
{
    public static readonly JsonSerializerOptions Options = new(JsonSerializerDefaults.Web)
    {
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    /// <summary>The JSON value null, where a value must be present.</summary>
    public static readonly JsonElement Null = JsonSerializer.SerializeToElement<object?>(null);
}
