using ManaSync.Web.Infrastructure;
using Npgsql;
using Xunit;

namespace ManaSync.Core.Tests.Infrastructure;

/// <summary>Which failures answer 503 (retry) rather than 500: no writable primary, however it shows.</summary>
public sealed class DatabaseUnavailableTests
{
    private static PostgresException Server(string sqlState) => new("message", "FATAL", "FATAL", sqlState);

    [Theory]
    [InlineData("57P01")] // terminating connection due to administrator command (a switchover)
    [InlineData("57P03")] // the database system is starting up / in recovery
    [InlineData("25006")] // read-only transaction: a demoted primary
    [InlineData("08006")] // connection failure
    public void A_server_that_cannot_take_writes_now_is_unavailable(string sqlState) =>
        Assert.True(DatabaseUnavailable.Is(Server(sqlState)));

    [Theory]
    [InlineData("23505")] // unique violation
    [InlineData("42P01")] // undefined table
    [InlineData("40P01")] // deadlock
    public void A_server_error_about_the_request_is_not(string sqlState) =>
        Assert.False(DatabaseUnavailable.Is(Server(sqlState)));

    [Fact]
    public void No_suitable_host_and_broken_connections_are_unavailable_also_when_wrapped()
    {
        Assert.True(DatabaseUnavailable.Is(new NpgsqlException("No suitable host was found.")));
        Assert.True(DatabaseUnavailable.Is(new InvalidOperationException("wrapped", new NpgsqlException("Exception while reading from stream", new IOException()))));
        Assert.True(DatabaseUnavailable.Is(new TimeoutException()));
    }

    [Fact]
    public void Other_failures_are_not()
    {
        Assert.False(DatabaseUnavailable.Is(new InvalidOperationException("a bug")));
        Assert.False(DatabaseUnavailable.Is(new NpgsqlOperationInProgressException(new NpgsqlCommand("select 1"))));
    }
}
