using System.Text.Json;
using Microsoft.IdentityModel.Tokens;

namespace ManaSync.Web.Features.Audit;

/// <summary>Where a page of a user's events ended in each shard: opaque to clients (base64url of a JSON object).</summary>
public static class EventCursor
{
    public static string Encode(IReadOnlyDictionary<string, long> positions) => Base64UrlEncoder.Encode(JsonSerializer.Serialize(positions));

    public static bool TryDecode(string? cursor, out Dictionary<string, long> positions)
    {
        positions = [];
        if (string.IsNullOrEmpty(cursor)) return true;
        try
        {
            positions = JsonSerializer.Deserialize<Dictionary<string, long>>(Base64UrlEncoder.Decode(cursor)) ?? [];
            return true;
        }
        catch (Exception e) when (e is JsonException or FormatException or ArgumentException)
        {
            return false;
        }
    }
}
