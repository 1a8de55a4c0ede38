using ManaSync.Web.Infrastructure;
using Xunit;

namespace ManaSync.Core.Tests.Infrastructure;

public sealed class LiveConnectionsTests
{
    [Fact]
    public void Connections_and_distinct_users_are_counted_until_closed()
    {
        var live = new LiveConnections();

        var first = live.Open("alice");
        var second = live.Open("alice");
        var third = live.Open("bob");
        var whileOpen = (live.Connections, live.Users);
        first.Dispose();
        first.Dispose();
        third.Dispose();

        Assert.Equal((3, 2), whileOpen);
        Assert.Equal((1, 1), (live.Connections, live.Users));
        second.Dispose();
        Assert.Equal((0, 0), (live.Connections, live.Users));
    }
}
