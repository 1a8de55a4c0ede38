using ManaSync.Web.Configuration;
using ManaSync.Web.Infrastructure;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Hosting.Internal;
using Npgsql;
using Xunit;

namespace ManaSync.Tests.Merge;

public sealed class ConfigurationTests
{
    private static ServerSettings Read(params (string Name, string Value)[] values) =>
        ReadIn(Environments.Development, values);

    private static ServerSettings ReadIn(string environment, params (string Name, string Value)[] values) =>
        ServerSettings.From(new ConfigurationBuilder()
            .AddInMemoryCollection(values.Select(v => new KeyValuePair<string, string?>(v.Name, v.Value)))
            .Build(), new HostingEnvironment { EnvironmentName = environment });

    [Fact]
    public void Outside_development_a_jwks_url_is_required()
    {
        var error = Assert.Throws<InvalidSettingException>(() => ReadIn(Environments.Production));

        Assert.Equal("JWKS_URL", error.Name);
        Assert.False(ReadIn(Environments.Production, ("JWKS_URL", "https://auth.example/jwks")).IssuesDevTokens);
        Assert.True(Read().IssuesDevTokens);
    }

    [Fact]
    public void Defaults_match_the_protocol()
    {
        var settings = Read();

        Assert.Equal(3050, settings.Port);
        Assert.Null(settings.DatabaseUrl);
        Assert.Equal(["http://localhost:5173", "http://localhost:5188"], settings.CorsOrigins);
        Assert.Equal(new Uri("http://localhost:3001"), settings.ManaAuthUrl);
        Assert.Equal("dev-service-key", settings.ManaServiceKey);
        Assert.Equal(TimeSpan.FromMinutes(5), settings.MaxClockSkew);
    }

    [Theory]
    [InlineData("PORT", "eighty")]
    [InlineData("PORT", "70000")]
    [InlineData("JWKS_URL", "not a url")]
    [InlineData("MANA_AUTH_URL", "ftp://auth")]
    [InlineData("MAX_CLOCK_SKEW", "soon")]
    public void A_bad_value_stops_start_up_naming_the_variable(string name, string value)
    {
        var error = Assert.Throws<InvalidSettingException>(() => Read((name, value)));
        Assert.Equal(name, error.Name);
        Assert.Contains(name, error.Message);
    }

    [Theory]
    [InlineData("300", 300)]
    [InlineData("5m", 300)]
    [InlineData("90s", 90)]
    [InlineData("00:02:00", 120)]
    public void Clock_skew_reads_common_duration_forms(string value, int seconds) =>
        Assert.Equal(TimeSpan.FromSeconds(seconds), Read(("MAX_CLOCK_SKEW", value)).MaxClockSkew);

    [Fact]
    public void A_database_url_becomes_an_npgsql_connection_string()
    {
        var builder = new NpgsqlConnectionStringBuilder(
            DatabaseUrl.ToConnectionString("postgres://sync%40app:p%3Ass@db.example:6543/mana?sslmode=require"));

        Assert.Equal("db.example", builder.Host);
        Assert.Equal(6543, builder.Port);
        Assert.Equal("mana", builder.Database);
        Assert.Equal("sync@app", builder.Username);
        Assert.Equal("p:ss", builder.Password);
        Assert.Equal(SslMode.Require, builder.SslMode);
    }

    [Theory]
    [InlineData("any")]
    [InlineData("standby")]
    [InlineData("prefer-standby")]
    [InlineData("read-only")]
    public async Task A_database_url_whose_target_may_pick_a_standby_stops_start_up(string target)
    {
        var settings = Read(("DATABASE_URL", $"postgres://u@h1,h2/db?target_session_attrs={target}"));

        var error = await Assert.ThrowsAsync<InvalidSettingException>(() => DatabaseSetup.ResolveAsync(settings));

        Assert.Equal("DATABASE_URL", error.Name);
        Assert.Contains(target, error.Message);
    }

    [Fact]
    public void A_keyword_connection_string_is_taken_as_it_is()
    {
        var builder = new NpgsqlConnectionStringBuilder(DatabaseUrl.ToConnectionString("Host=db;Port=5433;Username=u;Database=d"));

        Assert.Equal("db", builder.Host);
        Assert.Equal(5433, builder.Port);
    }

    [Theory]
    [InlineData("Host=db;Username=sync", 20, 64)]
    [InlineData("Host=db;Username=sync;Maximum Pool Size=100;Max Auto Prepare=5", 100, 5)]
    [InlineData("Host=db;Username=sync;maxpoolsize=7", 7, 64)]
    [InlineData("Host=db;Username=sync;MAXIMUM POOL SIZE=7", 7, 64)]
    public void Connections_default_to_a_small_pool_with_prepared_statements_unless_the_url_says_otherwise(
        string given, int maxPoolSize, int maxAutoPrepare)
    {
        var used = new NpgsqlConnectionStringBuilder(HostSetup.WithConnectionDefaults(given));

        Assert.Equal(maxPoolSize, used.MaxPoolSize);
        Assert.Equal(maxAutoPrepare, used.MaxAutoPrepare);
    }
}
