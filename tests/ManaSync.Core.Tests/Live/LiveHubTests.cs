using ManaSync.Web.Features.Live;
using Xunit;

namespace ManaSync.Core.Tests.Live;

public sealed class LiveHubTests
{
    private static ChangesCommitted Commit(string userId, params string[] scopes) =>
        new(userId, "todo", scopes, ["tasks"], DateTimeOffset.UnixEpoch);

    [Fact]
    public void A_commit_reaches_the_subscribers_of_its_scopes_and_of_its_author_only()
    {
        var hub = new LiveHub();
        var heard = new List<string>();
        using var alice = hub.Subscribe(["u:alice", "s:org-1"], _ => true, _ => heard.Add("alice"));
        using var bob = hub.Subscribe(["u:bob", "s:org-1"], _ => true, _ => heard.Add("bob"));
        using var carol = hub.Subscribe(["u:carol"], _ => true, _ => heard.Add("carol"));

        hub.Publish(Commit("alice", "u:alice"));
        hub.Publish(Commit("bob", "s:org-1"));
        // Carol's memberships were unknown when she subscribed; her own push into a space still reaches her.
        hub.Publish(Commit("carol", "s:org-2"));

        Assert.Equal(["alice", "alice", "bob", "carol"], heard.Order());
    }

    [Fact]
    public void A_subscriber_filed_under_several_matching_scopes_hears_a_commit_once_and_only_if_it_wants_it()
    {
        var hub = new LiveHub();
        var heard = 0;
        using var member = hub.Subscribe(["u:alice", "s:org-1"], commit => commit.AppId == "todo", _ => heard++);

        hub.Publish(Commit("alice", "u:alice", "s:org-1"));
        hub.Publish(Commit("alice", "u:alice") with { AppId = "notes" });

        Assert.Equal(1, heard);
    }

    [Fact]
    public void A_disposed_subscription_hears_nothing_more_and_waking_all_reaches_the_rest()
    {
        var hub = new LiveHub();
        var woken = new List<string>();
        var alice = hub.Subscribe(["u:alice"], _ => true, commit => woken.Add(commit is null ? "alice woken" : "alice"));
        using var bob = hub.Subscribe(["u:bob"], _ => true, commit => woken.Add(commit is null ? "bob woken" : "bob"));
        var whileBothListen = hub.Subscribers;

        alice.Dispose();
        hub.Publish(Commit("alice", "u:alice"));
        hub.WakeAll();

        Assert.Equal(2, whileBothListen);
        Assert.Equal(1, hub.Subscribers);
        Assert.Equal(["bob woken"], woken);
    }
}
