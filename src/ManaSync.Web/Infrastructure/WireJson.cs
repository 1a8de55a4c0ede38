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
}
