using System.Text.RegularExpressions;

namespace ManaSync.Web.Features.Sync;

public static partial class AppId
{
    /// <summary>App ids name event streams and appear in URLs: letters, digits, '_', '-', '.'.</summary>
    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
    private static partial Regex Pattern();

    public static bool IsValid(string appId) => Pattern().IsMatch(appId);

    public const string Rule = "appId must be 1-64 letters, digits, '_', '-' or '.'";
}
