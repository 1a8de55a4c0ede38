using ManaSync.Events;

namespace ManaSync.Web.Infrastructure;

/// <summary>A time in a request's query string (<c>asOf</c>, <c>from</c>, <c>to</c>): RFC 3339, or absent.</summary>
public static class QueryTime
{
    /// <returns>False when the parameter is there but not an RFC 3339 time; <paramref name="time"/> is null when it is absent.</returns>
    public static bool TryRead(IQueryCollection query, string name, out DateTimeOffset? time)
    {
        time = null;
        if (query[name].ToString() is not { Length: > 0 } text) return true;
        if (!Timestamps.TryParse(text, out var parsed)) return false;
        time = parsed;
        return true;
    }

    public static IResult Refusal(string name) => ApiError.BadRequest($"{name} must be an RFC 3339 time.");
}
