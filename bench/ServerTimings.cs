using System.Globalization;
using System.Text.RegularExpressions;

namespace ManaSync.Bench;

/// <summary>
/// The server's own request-duration histogram for pushes (from <c>/metrics</c>), so a latency tail can be
/// placed: inside the server's request handling, or outside it (client, sockets, scheduling).
/// </summary>
public sealed partial class ServerTimings
{
    private readonly SortedDictionary<double, long> _cumulative;

    private ServerTimings(SortedDictionary<double, long> cumulative) => _cumulative = cumulative;

    public static async Task<ServerTimings> ReadAsync(HttpClient client)
    {
        var text = await client.GetStringAsync("/metrics");
        var buckets = new SortedDictionary<double, long>();
        foreach (Match match in PushBucket().Matches(text))
        {
            var bound = match.Groups[1].Value == "+Inf" ? double.PositiveInfinity : double.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture);
            buckets[bound] = long.Parse(match.Groups[2].Value, CultureInfo.InvariantCulture);
        }
        return new ServerTimings(buckets);
    }

    /// <summary>The histogram of the pushes answered between two readings: the bucket (upper bound, ms) holding the p-th percentile.</summary>
    public static double PercentileBucketMs(ServerTimings before, ServerTimings after, double p)
    {
        var counts = after._cumulative.ToDictionary(bucket => bucket.Key, bucket => bucket.Value - before._cumulative.GetValueOrDefault(bucket.Key));
        var total = counts.GetValueOrDefault(double.PositiveInfinity);
        if (total == 0) return double.NaN;
        return counts.OrderBy(bucket => bucket.Key).First(bucket => bucket.Value >= p / 100 * total).Key * 1000;
    }

    /// <summary>The server's garbage-collection pauses so far, in seconds: they stop its request threads too.</summary>
    public static async Task<double> GcPauseSecondsAsync(HttpClient client) =>
        double.Parse(GcPause().Match(await client.GetStringAsync("/metrics")).Groups[1].Value, CultureInfo.InvariantCulture);

    [GeneratedRegex(@"^system_runtime_dotnet_gc_pause_time (\S+)$", RegexOptions.Multiline)]
    private static partial Regex GcPause();

    [GeneratedRegex("""http_request_duration_seconds_bucket\{code="200",method="POST",[^}]*endpoint="/sync/\{appId\}",le="([^"]+)"\} (\d+)""")]
    private static partial Regex PushBucket();
}
