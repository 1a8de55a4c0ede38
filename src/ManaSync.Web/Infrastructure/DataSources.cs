using Npgsql;

namespace ManaSync.Web.Infrastructure;

/// <summary>
/// Every pool the server opens, from one connection string with one host or several. With several, Npgsql
/// refuses a target session in the string of a data source: the pool is built over all hosts and then
/// asks for the target (read-write unless the string names another), so each connection the server's pools
/// hand out is to the current primary, whichever host that is after a failover.
/// </summary>
public static class DataSources
{
    public static NpgsqlDataSource Create(string connectionString)
    {
        var builder = new NpgsqlConnectionStringBuilder(connectionString);
        if (builder.Host?.Contains(',') != true) return NpgsqlDataSource.Create(connectionString);

        var target = TargetOf(builder.TargetSessionAttributes);
        builder.TargetSessionAttributes = null;
        return new NpgsqlDataSourceBuilder(builder.ConnectionString).BuildMultiHost().WithTargetSession(target);
    }

    /// <summary>libpq's names ("read-write", "prefer-standby", …) are the enum's, hyphenated; Npgsql has checked the value.</summary>
    private static TargetSessionAttributes TargetOf(string? name) =>
        name is null ? TargetSessionAttributes.ReadWrite : Enum.Parse<TargetSessionAttributes>(name.Replace("-", ""), ignoreCase: true);
}
