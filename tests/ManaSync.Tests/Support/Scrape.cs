using System.Globalization;
using System.Text.RegularExpressions;

namespace ManaSync.Tests.Support;

/// <summary>Reads series from /metrics in Prometheus text format.</summary>
public static class Scrape
{
    /// <summary>The value of an unlabelled series (or of one with its labels spelled out), 0 when absent.</summary>
    public static double Value(string scrape, string series)
    {
        var match = Regex.Match(scrape, "^" + Regex.Escape(series) + @" ([0-9.eE+-]+)$", RegexOptions.Multiline);
        return match.Success ? double.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture) : 0;
    }
}
