using System.Text.Json;
using CsCheck;
using ManaSync.Events;
using ManaSync.Projections.Records;
using Xunit;

namespace ManaSync.Core.Tests.Records;

/// <summary>
/// The record view's merge is commutative, associative and idempotent: any order of the same events,
/// applied once or more, yields the same state.
/// </summary>
public sealed class MergePropertyTests
{
    internal static readonly DateTimeOffset Base = new(2026, 1, 1, 10, 0, 0, TimeSpan.Zero);
    // Key paths among them: "meta.a" writes into "meta", and a later "meta" write supersedes it.
    private static readonly string[] FieldNames = ["title", "done", "deletedAt", "meta", "meta.a", "meta.a.b"];

    // Few distinct stamps and arrival times, so exact ties are common.
    private static readonly Gen<DateTimeOffset> Stamp = Gen.Int[0, 4].Select(minutes => Base.AddMinutes(minutes));

    internal static readonly Gen<ChangeRecorded> Change =
        Gen.Select(Gen.Int[0, 3], Stamp, Stamp, Gen.Int[0, FieldNames.Length - 1], Gen.Long[1, 4], Gen.Guid, Gen.Int[0, 9])
            .SelectMany(t => Gen.Select(Gen.Int[0, 2], Gen.Bool).Select(u =>
            {
                var (opPick, stamp, received, field, tx, eventId, value) = t;
                var (index, futureStamp) = u;
                var op = opPick switch { 0 => ChangeOp.Insert, 1 or 2 => ChangeOp.Update, _ => ChangeOp.Delete };
                var fieldStamp = futureStamp ? Base.AddYears(5) : stamp;
                return new ChangeRecorded
                {
                    EventId = eventId,
                    SchemaVersion = 1,
                    UserId = "alice",
                    AppId = "todo",
                    Table = "tasks",
                    RecordId = "t1",
                    Op = op,
                    Fields = op == ChangeOp.Update
                        ? new Dictionary<string, FieldChange> { [FieldNames[field]] = new(JsonSerializer.SerializeToElement(value), fieldStamp) }
                        : null,
                    Data = op == ChangeOp.Insert
                        ? JsonSerializer.SerializeToElement(new Dictionary<string, object> { [FieldNames[field]] = value, ["updatedAt"] = Timestamps.Format(stamp) })
                        : null,
                    DeletedAt = op == ChangeOp.Delete && value % 2 == 0 ? stamp : null,
                    ReceivedAt = received,
                    FutureLimit = received.AddMinutes(5),
                    CommitTx = tx,
                    CommitIndex = index,
                    BatchIndex = index,
                };
            }));

    [Fact]
    public void Any_order_of_the_same_events_yields_the_same_view()
    {
        Gen.Select(Change.List[1, 12], Gen.Int).Sample((events, seed) =>
        {
            var random = new Random(seed);
            var shuffled = events.OrderBy(_ => random.Next()).ToList();
            Assert.Equal(StateOf(Merge(events)), StateOf(Merge(shuffled)));
        }, iter: 2000);
    }

    [Fact]
    public void Applying_events_again_changes_nothing()
    {
        Change.List[1, 12].Sample(events =>
        {
            var once = Merge(events);
            var twice = Merge(events.Concat(events));
            Assert.Equal(StateOf(once), StateOf(twice));
        }, iter: 2000);
    }

    [Fact]
    public void Merging_in_two_halves_equals_merging_all_at_once()
    {
        Gen.Select(Change.List[0, 8], Change.List[1, 8]).Sample((first, second) =>
        {
            var halves = RecordView.Create(second[0]);
            foreach (var change in first) halves.Apply(change);
            foreach (var change in second) halves.Apply(change);
            Assert.Equal(StateOf(Merge(first.Concat(second))), StateOf(halves));
        }, iter: 2000);
    }

    [Fact]
    public void The_winning_field_has_the_largest_effective_timestamp()
    {
        Change.List[1, 12].Sample(events =>
        {
            var view = Merge(events);
            foreach (var (name, state) in view.Fields)
            {
                var stamps = events.SelectMany(e => StampsOf(e, name)).ToList();
                Assert.Equal(stamps.Max(), state.Write.Stamp);
            }
        }, iter: 2000);
    }

    private static IEnumerable<DateTimeOffset> StampsOf(ChangeRecorded change, string field)
    {
        DateTimeOffset Clamp(DateTimeOffset stamp) => stamp > change.FutureLimit ? change.ReceivedAt : stamp;
        if (change.Fields?.TryGetValue(field, out var update) == true) yield return Clamp(update.UpdatedAt);
        if (change.Data is { } data && data.TryGetProperty(field, out _)) yield return Clamp(RecordView.InsertStamp(change));
        if (field == "deletedAt" && change is { Op: ChangeOp.Delete, DeletedAt: { } deletedAt }) yield return Clamp(deletedAt);
    }

    private static RecordView Merge(IEnumerable<ChangeRecorded> events)
    {
        var list = events.ToList();
        var view = RecordView.Create(list[0]);
        foreach (var change in list) view.Apply(change);
        return view;
    }

    /// <summary>Everything a client can observe; <see cref="RecordView.Born"/> is only a hint and left out.</summary>
    private static string StateOf(RecordView view) => string.Join("\n",
        view.Fields.OrderBy(f => f.Key, StringComparer.Ordinal)
            .Select(f => $"{f.Key}={f.Value.Value.GetRawText()}@{f.Value.Write.Stamp:O}/{f.Value.Write.EventId}")
            .Append($"inserted={view.Inserted?.EventId} tombstone={view.Tombstone?.EventId}")
            .Append($"live={view.IsLive} position={view.Position}")
            .Append("live fields=" + string.Join(",", LiveState.Of(view).Select(f => $"{f.Name}={f.Value.GetRawText()}").Order())));
}
