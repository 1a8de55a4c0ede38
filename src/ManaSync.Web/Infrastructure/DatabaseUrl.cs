using System.Data.Common;
using Npgsql;

namespace ManaSync.Web.Infrastructure;

/// <summary>
/// DATABASE_URL comes as a URL (postgres://user:pass@h1:5432,h2:5433/db?sslmode=…) or in Npgsql keyword form
/// (Host=h1,h2;Port=5432,5433;…), with one host or several (PROTOCOL §12), and becomes an Npgsql connection
/// string. Several hosts are written the way Npgsql reads them, each with its own port (Host=h1:5432,h2:5433).
/// </summary>
public static class DatabaseUrl
{
    private const int DefaultPort = 5432;

    public static string ToConnectionString(string value) =>
        value.StartsWith("postgres://", StringComparison.OrdinalIgnoreCase) ||
        value.StartsWith("postgresql://", StringComparison.OrdinalIgnoreCase)
            ? FromUrl(value)
            : FromKeywords(value);

    private static string FromUrl(string value)
    {
        // System.Uri takes one host only, so the authority is split by hand: [user[:password]@]host[:port],….
        var rest = value[(value.IndexOf("://", StringComparison.Ordinal) + 3)..];
        var query = "";
        if (rest.IndexOf('?') is var q and >= 0) (rest, query) = (rest[..q], rest[(q + 1)..]);
        var path = "";
        if (rest.IndexOf('/') is var slash and >= 0) (rest, path) = (rest[..slash], rest[(slash + 1)..]);
        var userInfo = "";
        if (rest.LastIndexOf('@') is var at and >= 0) (userInfo, rest) = (rest[..at], rest[(at + 1)..]);
        if (rest.Length == 0) throw new FormatException("expected postgres://user:password@host:port/database");

        var credentials = userInfo.Split(':', 2);
        var builder = new NpgsqlConnectionStringBuilder
        {
            Database = Uri.UnescapeDataString(path) is { Length: > 0 } database ? database : "postgres",
            Username = Uri.UnescapeDataString(credentials[0]),
        };
        if (credentials.Length == 2) builder.Password = Uri.UnescapeDataString(credentials[1]);
        SetHosts(builder, rest.Split(',').Select(HostAndPort).ToList());

        foreach (var pair in query.Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            var parts = pair.Split('=', 2);
            var name = Uri.UnescapeDataString(parts[0]);
            var setting = parts.Length == 2 ? Uri.UnescapeDataString(parts[1]) : "";
            switch (name)
            {
                case "sslmode": builder.SslMode = SslModeOf(setting); break;
                // libpq's name, which pg_auto_failover's `show uri` prints, and the spelled-out one.
                case "target_session_attrs" or "target_session_attributes": builder.TargetSessionAttributes = setting; break;
                default: builder[name] = setting; break;
            }
        }
        return builder.ConnectionString;
    }

    /// <summary>"h", "h:5433", "[::1]:5433" → (host, port).</summary>
    private static (string Host, int Port) HostAndPort(string text)
    {
        var colon = text.StartsWith('[') ? text.IndexOf("]:", StringComparison.Ordinal) + 1 : text.LastIndexOf(':');
        if (colon <= 0) return (Uri.UnescapeDataString(text), DefaultPort);
        return int.TryParse(text[(colon + 1)..], out var port) && port is > 0 and < 65536
            ? (Uri.UnescapeDataString(text[..colon]), port)
            : throw new FormatException($"'{text}' is not host:port");
    }

    /// <summary>Npgsql takes a port per host only inside Host; libpq's Port=5432,5433 (one per host, or one for all) is rewritten.</summary>
    private static string FromKeywords(string value)
    {
        var given = new DbConnectionStringBuilder { ConnectionString = value };
        var portKey = given.Keys.Cast<string>().FirstOrDefault(key => key.Equals("Port", StringComparison.OrdinalIgnoreCase));
        if (portKey is null || given[portKey] is not string ports || !ports.Contains(','))
            return new NpgsqlConnectionStringBuilder(value).ConnectionString;

        var portList = ports.Split(',').Select(port => int.TryParse(port.Trim(), out var number) && number is > 0 and < 65536
            ? number
            : throw new FormatException($"'{port}' is not a port")).ToList();
        given.Remove(portKey);
        var builder = new NpgsqlConnectionStringBuilder(given.ConnectionString);
        var hosts = (builder.Host ?? "").Split(',').Select(host => host.Trim()).ToList();
        if (hosts.Count != portList.Count)
            throw new FormatException($"{hosts.Count} hosts but {portList.Count} ports: give one port per host, or one for all");
        SetHosts(builder, hosts.Zip(portList).ToList());
        return builder.ConnectionString;
    }

    private static void SetHosts(NpgsqlConnectionStringBuilder builder, IReadOnlyList<(string Host, int Port)> hosts)
    {
        if (hosts.Count == 1) (builder.Host, builder.Port) = hosts[0];
        else builder.Host = string.Join(',', hosts.Select(host => $"{host.Host}:{host.Port}"));
    }

    private static SslMode SslModeOf(string libpqName) => libpqName switch
    {
        "disable" => SslMode.Disable,
        "allow" => SslMode.Allow,
        "prefer" => SslMode.Prefer,
        "require" => SslMode.Require,
        "verify-ca" => SslMode.VerifyCA,
        "verify-full" => SslMode.VerifyFull,
        _ => throw new FormatException($"unknown sslmode '{libpqName}'"),
    };
}
