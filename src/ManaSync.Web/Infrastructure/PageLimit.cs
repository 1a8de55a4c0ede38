using System.Globalization;

namespace ManaSync.Web.Infrastructure;

/// <summary>A request's <c>limit</c>: how many items a page holds, a whole number from 1 to the endpoint's maximum.</summary>
public static class PageLimit
{
    /// <returns>False when the text is not such a number; an empty text is the endpoint's default.</returns>
    public static bool TryRead(string text, int defaultLimit, int max, out int limit)
    {
        limit = defaultLimit;
        return text.Length == 0 || int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out limit) && limit >= 1 && limit <= max;
    }

    public static IResult Refusal(int max) => ApiError.BadRequest($"limit must be a whole number from 1 to {max}.");
}
