using ManaSync.Web.Infrastructure;
using Npgsql;
using Xunit;

namespace ManaSync.Core.Tests.Infrastructure;

/// <summary>DATABASE_URL with several hosts, in both forms of PROTOCOL §12, and the defaults a failover needs.</summary>
public sealed class DatabaseUrlTests
{
    [Theory]
    [InlineData("postgres://u:p@h1:5432,h2:5433/db?target_session_attributes=read-write")]
    [InlineData("postgresql://u:p@h1,h2:5433/db?target_session_attrs=read-write")]
    [InlineData("Host=h1,h2;Port=5432,5433;Database=db;Username=u;Password=p;Target Session Attributes=read-write")]
    [InlineData("Host=h1:5432,h2:5433;Database=db;Username=u;Password=p;Target Session Attributes=read-write")]
    public void Several_hosts_in_either_form_become_one_host_list_with_a_port_each(string url)
    {
        var builder = new NpgsqlConnectionStringBuilder(DatabaseUrl.ToConnectionString(url));

        Assert.Equal("h1:5432,h2:5433", builder.Host);
        Assert.Equal("db", builder.Database);
        Assert.Equal("u", builder.Username);
        Assert.Equal("p", builder.Password);
        Assert.Equal("read-write", builder.TargetSessionAttributes);
    }

    [Fact]
    public void One_port_given_as_a_list_must_match_the_hosts() =>
        Assert.Throws<FormatException>(() => DatabaseUrl.ToConnectionString("Host=h1,h2,h3;Port=5432,5433;Username=u"));

    [Fact]
    public void An_ipv6_host_keeps_its_brackets_apart_from_its_port()
    {
        var builder = new NpgsqlConnectionStringBuilder(DatabaseUrl.ToConnectionString("postgres://u@[::1]:5433,h2/db"));

        Assert.Equal("[::1]:5433,h2:5432", builder.Host);
    }

    [Fact]
    public void Several_hosts_default_to_the_primary_and_to_noticing_a_failover_within_seconds()
    {
        var used = new NpgsqlConnectionStringBuilder(HostSetup.WithConnectionDefaults("Host=h1:5432,h2:5433;Username=u"));

        Assert.Equal("read-write", used.TargetSessionAttributes);
        Assert.Equal(2, used.HostRecheckSeconds);
        Assert.Equal(5, used.Timeout);
    }

    [Fact]
    public void Settings_the_url_gives_win_over_the_failover_defaults()
    {
        var used = new NpgsqlConnectionStringBuilder(HostSetup.WithConnectionDefaults(
            "Host=h1:5432,h2:5433;Username=u;Target Session Attributes=primary;Host Recheck Seconds=7;Timeout=9"));

        Assert.Equal("primary", used.TargetSessionAttributes);
        Assert.Equal(7, used.HostRecheckSeconds);
        Assert.Equal(9, used.Timeout);
    }

    [Fact]
    public void One_host_keeps_npgsqls_own_defaults()
    {
        var used = new NpgsqlConnectionStringBuilder(HostSetup.WithConnectionDefaults("Host=db;Username=u"));

        Assert.Null(used.TargetSessionAttributes);
        Assert.Equal(10, used.HostRecheckSeconds);
    }

    [Theory]
    [InlineData("")]
    [InlineData(";Target Session Attributes=primary")]
    [InlineData(";Target Session Attributes=prefer-standby")]
    public void A_multi_host_pool_is_built_with_its_target_outside_the_string(string target)
    {
        using var pool = DataSources.Create(HostSetup.WithConnectionDefaults("Host=h1:5432,h2:5433;Username=u" + target));

        Assert.DoesNotContain("Target Session", pool.ConnectionString);
    }
}
