using System.Text.Json;
using ManaSync.Events;
using ManaSync.Events.Upcasting;
using ManaSync.Projections.Records;
using ManaSync.Web.Features.WritePath;
using ManaSync.Web.Infrastructure.Isolation;
using Xunit;

namespace ManaSync.Core.Tests.WritePath;

/// <summary>How the write path decides a set of changes, without a database (<see cref="WriteDecider"/>).</summary>
public sealed class WriteDeciderTests
{
    private static readonly DateTimeOffset T0 = new(2026, 1, 1, 10, 0, 0, TimeSpan.Zero);
    private static readonly Caller Alice = new("alice", ["team"]);
    private readonly Dictionary<string, RecordView> _views = [];
    private int _index;

    private ChangeRecorded Update(string id, string field, object value, int minute, Guid? eventId = null, string user = "alice",
        string? space = null) => new IncomingChange
    {
        EventId = eventId, SchemaVersion = 1, UserId = user, AppId = "todo", Table = "tasks", RecordId = id, Op = ChangeOp.Update,
        Fields = new Dictionary<string, FieldChange> { [field] = new(JsonSerializer.SerializeToElement(value), T0.AddMinutes(minute)) },
        SpaceId = space, ClientId = "laptop", ReceivedAt = T0.AddHours(1),
    }.ToEvent(commitTx: 50, _index++, TimeSpan.FromMinutes(5));

    private WriteDecision Decide(IEnumerable<ChangeRecorded> changes, params ChangeRecorded[] stored) =>
        WriteDecider.Decide([.. changes], stored.ToDictionary(e => e.EventId), _views, user => user == "alice" ? Alice : new Caller(user, []),
            ChangeUpcasting.None, reportConflicts: true);

    private string Value(string id, string field) =>
        _views[RecordKey.For("u:alice", "todo", "tasks", id)].Fields[field].Value.GetString()!;

    [Fact]
    public void A_retried_change_is_skipped_and_merged_no_second_time()
    {
        var id = Guid.NewGuid();
        var stored = Update("t1", "title", "milk", 1, id);

        var decision = Decide([Update("t1", "title", "milk", 1, id), Update("t2", "title", "bread", 1)], stored);

        Assert.Null(decision.Refusal);
        Assert.Equal(1, decision.Skipped);
        Assert.Equal("t2", Assert.Single(decision.Events).RecordId);
        Assert.False(_views.ContainsKey(RecordKey.For("u:alice", "todo", "tasks", "t1")));
    }

    [Fact]
    public void An_eventId_stored_with_another_payload_or_by_another_user_is_a_clash_that_stores_nothing()
    {
        var id = Guid.NewGuid();

        var changed = Decide([Update("t2", "title", "bread", 1), Update("t1", "title", "oat milk", 1, id)], Update("t1", "title", "milk", 1, id));
        var others = Decide([Update("t1", "title", "milk", 1, id)], Update("t1", "title", "milk", 1, id, user: "bob"));

        Assert.Equal((409, 1), (changed.Refusal!.Status, changed.Refusal.Index));
        Assert.Empty(changed.Events);
        Assert.Equal(409, others.Refusal!.Status);
    }

    [Fact]
    public void One_eventId_twice_among_the_changes_is_stored_once_or_refused_when_they_differ()
    {
        var id = Guid.NewGuid();

        var same = Decide([Update("t1", "title", "milk", 1, id), Update("t1", "title", "milk", 1, id)]);
        var different = Decide([Update("t1", "title", "milk", 1, id), Update("t1", "title", "bread", 1, id)]);

        Assert.Equal((1, 1), (same.Events.Count, same.Skipped));
        Assert.Equal(409, different.Refusal!.Status);
    }

    [Fact]
    public void Several_writes_to_one_record_merge_in_order_and_report_no_conflict_with_each_other()
    {
        var decision = Decide([Update("t1", "title", "late", 5), Update("t1", "title", "early", 2), Update("t1", "done", true, 3)]);

        Assert.Equal(3, decision.Events.Count);
        Assert.Empty(decision.Conflicts);
        Assert.Equal("late", Value("t1", "title"));
    }

    [Fact]
    public void A_field_that_loses_to_a_stored_later_write_is_reported_with_the_winning_value()
    {
        Decide([Update("t1", "title", "server", 9)]);

        var decision = Decide([Update("t1", "title", "client", 4)]);

        var conflict = Assert.Single(decision.Conflicts);
        Assert.Equal(("title", "client", "server"), (conflict.Field, conflict.ClientValue.GetString(), conflict.ServerValue.GetString()));
        Assert.Equal("2026-01-01T10:09:00.000Z", conflict.ServerTimestamp);
        Assert.Equal("server", Value("t1", "title"));
    }

    [Fact]
    public void A_write_into_a_space_is_refused_403_for_a_non_member_and_503_while_memberships_are_unknown()
    {
        var notMember = WriteDecider.Decide([Update("t1", "title", "x", 1, space: "other")], new Dictionary<Guid, ChangeRecorded>(), _views,
            _ => Alice, ChangeUpcasting.None, reportConflicts: false);
        var unknown = WriteDecider.Decide([Update("t1", "title", "x", 1, space: "team")], new Dictionary<Guid, ChangeRecorded>(), _views,
            _ => new Caller("alice", [], SpacesKnown: false), ChangeUpcasting.None, reportConflicts: false);
        var member = WriteDecider.Decide([Update("t1", "title", "x", 1, space: "team")], new Dictionary<Guid, ChangeRecorded>(), _views,
            _ => Alice, ChangeUpcasting.None, reportConflicts: false);

        Assert.Equal(403, notMember.Refusal!.Status);
        Assert.Equal("membership_unavailable", unknown.Refusal!.Error);
        Assert.Equal(503, unknown.Refusal.Status);
        Assert.Null(member.Refusal);
        Assert.Equal("s:team", RecordKey.Scope(Assert.Single(member.Events)));
    }
}
