using System.Text.Json;
using ManaSync.Events;
using ManaSync.Events.Upcasting;
using ManaSync.Projections.Records;
using ManaSync.Web.Features.Sync;
using ManaSync.Web.Features.WritePath;
using Xunit;

namespace ManaSync.Core.Tests.WritePath;

/// <summary>Where a change is stored, decided without a database (<see cref="RecordHomes"/>).</summary>
public sealed class RecordHomesTests
{
    private static readonly DateTimeOffset T0 = new(2026, 1, 1, 10, 0, 0, TimeSpan.Zero);
    private const string Sentinel = "_personal:alice";
    private static readonly IReadOnlyList<string> AliceSees = ["u:alice", "s:personal", "s:team"];

    private readonly Dictionary<string, RecordView> _views = [];
    private long _tx = 10;

    private ChangeRecorded Change(string user, string? space, int minute, params (string Name, object Value)[] fields) => new()
    {
        EventId = Guid.NewGuid(), SchemaVersion = 1, UserId = user, AppId = "todo", Table = "tasks", RecordId = "t1",
        Op = ChangeOp.Update, SpaceId = space,
        Fields = fields.ToDictionary(f => f.Name, f => new FieldChange(JsonSerializer.SerializeToElement(f.Value), T0.AddMinutes(minute))),
        ReceivedAt = T0.AddMinutes(minute), FutureLimit = T0.AddHours(1), CommitTx = _tx++, CommitIndex = 0, BatchIndex = 0,
    };

    private PlacedChange Place(ChangeRecorded change, IReadOnlyList<string>? scopes = null, bool spacesKnown = true) =>
        RecordHomes.Place(change, _views, scopes ?? AliceSees, spacesKnown, ChangeUpcasting.None);

    private RecordView View(string scope) => _views[RecordKey.For(scope, "todo", "tasks", "t1")];

    [Fact]
    public void A_later_change_naming_another_space_moves_the_record_with_its_state()
    {
        Place(Change("alice", Sentinel, 0, ("title", "draft")));

        var moved = Place(Change("alice", "personal", 1, ("done", true))).Change;

        Assert.Equal(("s:personal", "u:alice"), (moved.RecordScope, moved.MovedFrom));
        Assert.NotNull(moved.MovedState);
        Assert.Equal("s:personal", View("u:alice").MovedTo);
        Assert.Equal(["done", "title"], LiveState.Of(View("s:personal")).Select(f => f.Name).Order());
        Assert.Equal("personal", View("s:personal").PlacedAs);
    }

    [Fact]
    public void An_older_change_naming_the_scope_the_record_left_is_merged_where_it_is()
    {
        Place(Change("alice", Sentinel, 0, ("title", "draft")));
        Place(Change("alice", "personal", 5, ("title", "planned")));

        var late = Place(Change("alice", Sentinel, 3, ("done", true))).Change;

        Assert.Equal("s:personal", late.RecordScope);
        Assert.Null(late.MovedFrom);
        Assert.True(LiveState.Of(View("s:personal")).Single(f => f.Name == "done").Value.GetBoolean());
    }

    [Fact]
    public void A_change_without_fields_moves_nothing()
    {
        Place(Change("alice", Sentinel, 0, ("title", "draft")));

        var rewrite = Place(Change("alice", "personal", 1)).Change;

        Assert.Equal("u:alice", rewrite.RecordScope);
        Assert.Null(View("u:alice").MovedTo);
    }

    [Fact]
    public void A_writer_who_cannot_see_where_the_record_went_writes_into_the_view_it_left()
    {
        Place(Change("alice", "team", 0, ("title", "team task")));
        Place(Change("alice", "personal", 1, ("title", "mine now")));

        var bobs = Place(Change("bob", "team", 2, ("title", "bob was here")), ["u:bob", "s:team"]).Change;

        Assert.Equal("s:team", bobs.RecordScope);
        Assert.Null(bobs.MovedFrom);
        Assert.Equal("s:personal", View("s:team").MovedTo);
        Assert.Equal("mine now", LiveState.Of(View("s:personal")).Single(f => f.Name == "title").Value.GetString());
    }

    [Fact]
    public void While_the_writers_spaces_are_unknown_a_record_that_left_the_named_scope_is_not_placed()
    {
        Place(Change("alice", Sentinel, 0, ("title", "draft")));
        Place(Change("alice", "personal", 1, ("title", "planned")));

        var unknown = Place(Change("alice", Sentinel, 2, ("done", true)), ["u:alice"], spacesKnown: false);

        Assert.True(unknown.NeedsMemberships);
    }
}
