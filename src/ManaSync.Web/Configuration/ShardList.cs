using System.Globalization;
using System.Text.RegularExpressions;

namespace ManaSync.Web.Configuration;

/// <summary>A shard as SHARDS names it: its name and its connection (a URL or keywords, one host or several).</summary>
public sealed record ShardSetting(string Name, string Connection);

/// <summary>
/// SHARDS and SHARD_WEIGHTS (PROTOCOL §12, docs/deployment.md "Shards"). SHARDS holds whitespace-separated
/// <c>name=connection</c> entries. A keyword connection string may itself hold spaces ("Target Session
/// Attributes=read-write"), so a new entry starts only at a word that reads <c>name=postgres://…</c> or
/// <c>name=Keyword=…</c>; any other word belongs to the entry before it.
/// </summary>
public static partial class ShardList
{
    /// <summary>The shard DATABASE_URL names, which holds the shard map.</summary>
    public const string Main = "main";

    [GeneratedRegex(@"^([a-z0-9][a-z0-9_-]{0,39})=(postgres(ql)?://|[^=\s;]+=)", RegexOptions.IgnoreCase)]
    private static partial Regex EntryStart();

    [GeneratedRegex(@"^[a-z0-9][a-z0-9_-]{0,39}$")]
    private static partial Regex Name();

    public static IReadOnlyList<ShardSetting> Parse(string text)
    {
        var entries = new List<(string Name, List<string> Words)>();
        foreach (var word in text.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries))
        {
            if (EntryStart().Match(word) is { Success: true } start)
                entries.Add((start.Groups[1].Value, [word[(start.Groups[1].Length + 1)..]]));
            else if (entries.Count > 0)
                entries[^1].Words.Add(word);
            else
                throw new FormatException($"expected name=connection entries; '{Hidden(word)}' does not start one");
        }

        var shards = new List<ShardSetting>();
        foreach (var (name, words) in entries)
        {
            if (!Name().IsMatch(name))
                throw new FormatException($"shard name '{name}' must be 1 to 40 lowercase letters, digits, '-' or '_', starting with a letter or digit");
            if (name == Main) throw new FormatException($"'{Main}' is the shard DATABASE_URL names; give this one another name");
            if (shards.Any(shard => shard.Name == name)) throw new FormatException($"shard '{name}' is named twice");
            shards.Add(new ShardSetting(name, string.Join(' ', words)));
        }
        return shards;
    }

    /// <summary>SHARD_WEIGHTS: <c>name=weight</c> entries separated by whitespace or commas; a shard left out weighs 1.</summary>
    public static IReadOnlyDictionary<string, double> ParseWeights(string text)
    {
        var weights = new Dictionary<string, double>();
        foreach (var entry in text.Split([' ', '\t', '\n', '\r', ','], StringSplitOptions.RemoveEmptyEntries))
        {
            var parts = entry.Split('=');
            if (parts.Length != 2 || !double.TryParse(parts[1], NumberStyles.Float, CultureInfo.InvariantCulture, out var weight) ||
                !double.IsFinite(weight) || weight < 0)
                throw new FormatException($"'{entry}' is not name=weight with a weight of 0 or more");
            if (!weights.TryAdd(parts[0], weight)) throw new FormatException($"shard '{parts[0]}' is weighed twice");
        }
        return weights;
    }

    /// <summary>A word of a connection string may hold a password: never repeat more than its start.</summary>
    private static string Hidden(string word) => word.Length <= 12 ? word : word[..12] + "…";
}
