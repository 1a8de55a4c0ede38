using System.Text.Json;
using ManaSync.Events;
using ManaSync.Projections.Records;
using Marten;
using Xunit;

namespace ManaSync.Core.Tests.Records;

/// <summary>The projection takes the write path's merged views only for exactly the events they were merged with.</summary>
public sealed class MergedViewsTests : IDisposable
{
    // Sessions are only keys here: a Marten session connects on its first query, and none is made.
    private readonly DocumentStore _store = DocumentStore.For("Host=localhost;Database=unused");

    public void Dispose() => _store.Dispose();

    private static readonly DateTimeOffset T0 = new(2026, 1, 1, 10, 0, 0, TimeSpan.Zero);

    private static ChangeRecorded Update(string record, int minute) => new()
    {
        EventId = Guid.NewGuid(), SchemaVersion = 1, UserId = "alice", AppId = "app", Table = "tasks", RecordId = record,
        Op = ChangeOp.Update,
        Fields = new Dictionary<string, FieldChange> { ["title"] = new(JsonSerializer.SerializeToElement($"at {minute}"), T0.AddMinutes(minute)) },
        ReceivedAt = T0.AddMinutes(minute), FutureLimit = T0.AddHours(1), CommitTx = 10, CommitIndex = minute, BatchIndex = minute,
    };

    private static IEnumerable<string> Keys(IEnumerable<ChangeRecorded> events) => events.SelectMany(RecordKey.Of).Distinct();

    private static Dictionary<string, RecordView> Merged(IEnumerable<ChangeRecorded> events)
    {
        var views = new Dictionary<string, RecordView>();
        foreach (var change in events) RecordViews.Apply(views, change);
        return views;
    }

    [Fact]
    public void The_same_events_in_the_same_order_take_the_views_they_touch_once()
    {
        using var session = _store.LightweightSession();
        var events = new[] { Update("t1", 1), Update("t2", 2), Update("t1", 3) };
        var views = Merged(events);
        views["unrelated"] = RecordView.Create(Update("t9", 9));
        MergedViews.Hand(session, events, views);

        Assert.True(MergedViews.TryTake(session, events, Keys(events), out var taken));
        Assert.Equal(["t1", "t2"], taken.Select(view => view.RecordId).Order());
        Assert.False(MergedViews.TryTake(session, events, Keys(events), out _));
    }

    [Fact]
    public void Events_in_another_order_or_other_events_are_merged_again()
    {
        using var session = _store.LightweightSession();
        var events = new[] { Update("t1", 1), Update("t2", 2) };

        MergedViews.Hand(session, events, Merged(events));
        Assert.False(MergedViews.TryTake(session, [events[1], events[0]], Keys(events), out _));
        MergedViews.Hand(session, events, Merged(events));
        Assert.False(MergedViews.TryTake(session, [events[0], events[1] with { }], Keys(events), out _));
        MergedViews.Hand(session, events, Merged(events));
        Assert.False(MergedViews.TryTake(session, [events[0]], Keys(events), out _));
    }

    [Fact]
    public void Views_handed_for_one_session_are_not_taken_by_another()
    {
        using var writer = _store.LightweightSession();
        using var other = _store.LightweightSession();
        var events = new[] { Update("t1", 1) };
        MergedViews.Hand(writer, events, Merged(events));

        Assert.False(MergedViews.TryTake(other, events, Keys(events), out _));
        Assert.True(MergedViews.TryTake(writer, events, Keys(events), out _));
    }
}
