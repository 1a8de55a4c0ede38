using System.Net;
using ManaSync.Projections.Records;
using ManaSync.Testing;
using ManaSync.Tests.Support;
using ManaSync.Web.Features.Live;
using Xunit;
using static ManaSync.Testing.Changes;

namespace ManaSync.Tests.Live;

/// <summary>A push announces its commit to every node from inside its own transaction.</summary>
public sealed class CommitNoticeTests(AppFixture app) : SyncTest(app)
{
    [Fact]
    public async Task A_push_announces_its_app_scope_and_tables_once_what_it_wrote_can_be_read()
    {
        var user = UniqueIds.New("alice");
        await using var listener = await CommitListener.StartAsync(App.ConnectionString);

        (await App.ClientFor(user, "laptop").PushAsync("todo", Batch(Insert("tasks", "t1", new { n = 1 }), Insert("lists", "l1", new { n = 2 }))))
            .AssertStatus(HttpStatusCode.OK);
        var commit = await listener.NextOfAsync(user);
        var (visible, _) = await App.ClientFor(user, "phone").PullAllAsync("todo", "tasks");

        Assert.Equal("todo", commit.AppId);
        Assert.Equal([RecordKey.UserScope(user)], commit.Scopes);
        Assert.Equal(["lists", "tasks"], commit.Tables.Order());
        Assert.Equal(["t1"], visible.Select(change => change["id"]!.GetValue<string>()));
    }

    [Fact]
    public async Task A_push_that_fails_at_its_commit_announces_nothing()
    {
        var (alice, bob) = (UniqueIds.New("alice"), UniqueIds.New("bob"));
        var taken = Guid.NewGuid();
        await using var listener = await CommitListener.StartAsync(App.ConnectionString);
        (await App.ClientFor(alice).PushAsync("todo", Batch(Insert("tasks", "a1", new { n = 1 }, taken)))).AssertStatus(HttpStatusCode.OK);

        // Bob cannot see alice's event, so his push gets as far as saving before the eventId index refuses it.
        (await App.ClientFor(bob).PushAsync("todo", Batch(Insert("clashing", "b1", new { n = 1 }, taken)))).AssertStatus(HttpStatusCode.Conflict);
        (await App.ClientFor(bob).PushAsync("todo", Batch(Insert("tasks", "b2", new { n = 2 })))).AssertStatus(HttpStatusCode.OK);

        // Notifications arrive in commit order: had the refused push announced itself, it would come first.
        Assert.Equal(["tasks"], (await listener.NextOfAsync(bob)).Tables);
    }

    [Fact]
    public void A_change_that_moved_its_record_is_announced_to_the_scope_it_left_as_well()
    {
        var moved = new ManaSync.Events.ChangeRecorded
        {
            EventId = Guid.NewGuid(), SchemaVersion = 1, UserId = "alice", AppId = "todo", Table = "tasks", RecordId = "t1",
            Op = ManaSync.Events.ChangeOp.Update, SpaceId = "org-2", RecordScope = "s:org-2", MovedFrom = "s:org-1",
            ReceivedAt = DateTimeOffset.UnixEpoch, FutureLimit = DateTimeOffset.UnixEpoch, CommitTx = 1, CommitIndex = 0, BatchIndex = 0,
        };

        var commit = ChangesCommitted.Of([moved], DateTimeOffset.UnixEpoch, trace: null).Single();

        Assert.Equal(["s:org-1", "s:org-2"], commit.Scopes.Order());
    }

    [Fact]
    public void A_commit_fits_into_one_notification_as_it_is()
    {
        var commit = new ChangesCommitted("alice", "todo", ["u:alice", "s:org-1"], ["tasks", "lists"], DateTimeOffset.UnixEpoch);

        var payload = Assert.Single(CommitNotice.Payloads(commit));

        var read = CommitNotice.Read(payload)!;
        Assert.Equal(commit.Scopes, read.Scopes);
        Assert.Equal(commit.Tables, read.Tables);
    }

    [Fact]
    public void Too_many_tables_for_one_notification_are_announced_as_any_table()
    {
        var tables = Enumerable.Range(0, 2000).Select(n => $"table-{n}").ToList();
        var commit = new ChangesCommitted("alice", "todo", ["u:alice"], tables, DateTimeOffset.UnixEpoch);

        var payload = Assert.Single(CommitNotice.Payloads(commit));

        Assert.True(payload.Length <= CommitNotice.MaxPayloadBytes);
        Assert.Empty(CommitNotice.Read(payload)!.Tables);
        Assert.Equal(["u:alice"], CommitNotice.Read(payload)!.Scopes);
    }

    [Fact]
    public void Too_many_scopes_for_one_notification_are_spread_over_several()
    {
        var scopes = Enumerable.Range(0, 1000).Select(n => $"s:organisation-number-{n:D6}").ToList();
        var commit = new ChangesCommitted("alice", "todo", scopes, ["tasks"], DateTimeOffset.UnixEpoch);

        var payloads = CommitNotice.Payloads(commit).ToList();

        Assert.True(payloads.Count > 1);
        Assert.All(payloads, payload => Assert.True(System.Text.Encoding.UTF8.GetByteCount(payload) <= CommitNotice.MaxPayloadBytes));
        Assert.Equal(scopes, payloads.SelectMany(payload => CommitNotice.Read(payload)!.Scopes));
    }

    [Theory]
    [InlineData("not json")]
    [InlineData("null")]
    [InlineData("{}")]
    [InlineData("{\"UserId\":\"alice\",\"AppId\":\"todo\",\"Tables\":[]}")]
    public void A_payload_that_is_not_a_whole_commit_reads_as_none(string payload) => Assert.Null(CommitNotice.Read(payload));
}
