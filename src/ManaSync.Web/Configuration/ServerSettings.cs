using System.Globalization;

namespace ManaSync.Web.Configuration;

/// <summary>
/// Server configuration, read from environment variables (PROTOCOL §1). A bad value stops start-up
/// with a message naming the variable, instead of surfacing later as a confusing failure.
/// </summary>
public sealed record ServerSettings
{
    public int Port { get; init; } = 3050;
    public string? DatabaseUrl { get; init; }

    /// <summary>Shards beside the one DATABASE_URL names (SHARDS); empty: one database, as without sharding.</summary>
    public IReadOnlyList<ShardSetting> Shards { get; init; } = [];

    /// <summary>How much of the new scopes each shard takes (SHARD_WEIGHTS); a shard left out weighs 1.</summary>
    public IReadOnlyDictionary<string, double> ShardWeights { get; init; } = new Dictionary<string, double>();
    public Uri? JwksUrl { get; init; }
    public string? JwtIssuer { get; init; }
    public string? JwtAudience { get; init; }
    public IReadOnlyList<string> CorsOrigins { get; init; } = ["http://localhost:5173", "http://localhost:5188"];
    public Uri ManaAuthUrl { get; init; } = new("http://localhost:3001");
    public Uri ManaCreditsUrl { get; init; } = new("http://localhost:3061");
    public string ManaServiceKey { get; init; } = "dev-service-key";
    public IReadOnlySet<string> BillingExemptApps { get; init; } = new HashSet<string>();
    public TimeSpan MaxClockSkew { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>How often an idle SSE stream sends a heartbeat event.</summary>
    public TimeSpan SseHeartbeat { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Where the embedded development database keeps its files when DATABASE_URL is unset.</summary>
    public string? DataDirectory { get; init; }

    /// <summary>No JWKS_URL: the server issues its own tokens (allowed in Development only).</summary>
    public bool IssuesDevTokens => JwksUrl is null;

    public static ServerSettings From(IConfiguration config, IHostEnvironment environment)
    {
        var defaults = new ServerSettings();
        var settings = new ServerSettings
        {
            Port = ReadValue(config, "PORT", ParsePort) ?? defaults.Port,
            DatabaseUrl = Text(config, "DATABASE_URL"),
            Shards = Read(config, "SHARDS", ShardList.Parse) ?? defaults.Shards,
            ShardWeights = Read(config, "SHARD_WEIGHTS", ShardList.ParseWeights) ?? defaults.ShardWeights,
            JwksUrl = Read(config, "JWKS_URL", ParseHttpUrl),
            JwtIssuer = Text(config, "JWT_ISSUER"),
            JwtAudience = Text(config, "JWT_AUDIENCE"),
            CorsOrigins = Read(config, "CORS_ORIGINS", SplitList) ?? defaults.CorsOrigins,
            ManaAuthUrl = Read(config, "MANA_AUTH_URL", ParseHttpUrl) ?? defaults.ManaAuthUrl,
            ManaCreditsUrl = Read(config, "MANA_CREDITS_URL", ParseHttpUrl) ?? defaults.ManaCreditsUrl,
            ManaServiceKey = Text(config, "MANA_SERVICE_KEY") ?? defaults.ManaServiceKey,
            BillingExemptApps = Read(config, "BILLING_EXEMPT_APPS", s => (IReadOnlySet<string>)SplitList(s).ToHashSet())
                                ?? defaults.BillingExemptApps,
            MaxClockSkew = ReadValue(config, "MAX_CLOCK_SKEW", ParseDuration) ?? defaults.MaxClockSkew,
            SseHeartbeat = ReadValue(config, "SSE_HEARTBEAT", ParseDuration) is { } heartbeat && heartbeat > TimeSpan.Zero
                ? heartbeat
                : defaults.SseHeartbeat,
            DataDirectory = Text(config, "MANA_DATA_DIR"),
        };
        if (settings.IssuesDevTokens && !environment.IsDevelopment())
            throw new InvalidSettingException("JWKS_URL", "", "required outside the Development environment");
        return settings;
    }

    private static string? Text(IConfiguration config, string name) =>
        string.IsNullOrWhiteSpace(config[name]) ? null : config[name]!.Trim();

    private static T? Read<T>(IConfiguration config, string name, Func<string, T> parse) where T : class =>
        Text(config, name) is { } text ? Parse(name, text, parse) : null;

    private static T? ReadValue<T>(IConfiguration config, string name, Func<string, T> parse) where T : struct =>
        Text(config, name) is { } text ? Parse(name, text, parse) : null;

    private static T Parse<T>(string name, string text, Func<string, T> parse)
    {
        try
        {
            return parse(text);
        }
        catch (FormatException e)
        {
            throw new InvalidSettingException(name, text, e.Message);
        }
    }

    private static int ParsePort(string text) =>
        int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var port) && port is > 0 and < 65536
            ? port
            : throw new FormatException("expected a port number from 1 to 65535");

    private static Uri ParseHttpUrl(string text) =>
        Uri.TryCreate(text, UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https"
            ? uri
            : throw new FormatException("expected an absolute http(s) URL");

    private static List<string> SplitList(string text) =>
        text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToList();

    /// <summary>Seconds ("300"), a Go-style duration ("5m", "90s", "1h") or a .NET TimeSpan ("00:05:00").</summary>
    private static TimeSpan ParseDuration(string text)
    {
        if (double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var seconds) && seconds >= 0)
            return TimeSpan.FromSeconds(seconds);
        var unit = text[^1];
        if (unit is 's' or 'm' or 'h' &&
            double.TryParse(text[..^1], NumberStyles.Float, CultureInfo.InvariantCulture, out var amount) && amount >= 0)
            return unit switch { 's' => TimeSpan.FromSeconds(amount), 'm' => TimeSpan.FromMinutes(amount), _ => TimeSpan.FromHours(amount) };
        if (TimeSpan.TryParse(text, CultureInfo.InvariantCulture, out var span) && span >= TimeSpan.Zero)
            return span;
        throw new FormatException("expected a duration such as 300, 5m or 00:05:00");
    }
}

public sealed class InvalidSettingException(string name, string value, string reason)
    : Exception(value.Length == 0
        ? $"Environment variable {name} is not set: it is {reason}."
        : $"Invalid value for environment variable {name} ('{value}'): {reason}.")
{
    public string Name { get; } = name;
}
