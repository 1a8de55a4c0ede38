using System.Runtime.CompilerServices;
using ManaSync.Events;
using Marten;

namespace ManaSync.Projections.Records;

/// <summary>
/// The views a writer has already merged with the events it is about to append, from views it read under the write
/// locks of the same transaction, with the projection's own merge (<see cref="RecordViews.Apply"/>). Handed to the
/// projection for the session's next save, they spare it reading and merging the same views again. The projection
/// takes them only for exactly those events, in that order; for any other events it reads and merges as always.
/// </summary>
public sealed class MergedViews
{
    private static readonly ConditionalWeakTable<IDocumentOperations, MergedViews> Handed = new();

    private readonly IReadOnlyList<ChangeRecorded> _events;
    private readonly IReadOnlyDictionary<string, RecordView> _views;

    private MergedViews(IReadOnlyList<ChangeRecorded> events, IReadOnlyDictionary<string, RecordView> views) =>
        (_events, _views) = (events, views);

    /// <param name="events">The events as they will be appended (not upcast).</param>
    /// <param name="views">Every view those events touch, merged with all of them.</param>
    public static void Hand(IDocumentOperations session, IReadOnlyList<ChangeRecorded> events, IReadOnlyDictionary<string, RecordView> views) =>
        Handed.AddOrUpdate(session, new MergedViews(events, views));

    /// <summary>The views under these keys merged with exactly these events, if a writer handed them over for this session's save.</summary>
    /// <param name="events">The events being appended, as appended.</param>
    /// <param name="keys">The views they touch (keyed as the merge keys them: by the events in the newest schema's shape).</param>
    public static bool TryTake(IDocumentOperations session, IReadOnlyList<ChangeRecorded> events, IEnumerable<string> keys,
        out IReadOnlyCollection<RecordView> views)
    {
        views = [];
        if (!Handed.TryGetValue(session, out var merged)) return false;
        Handed.Remove(session);
        if (merged._events.Count != events.Count) return false;
        for (var i = 0; i < events.Count; i++)
            if (!ReferenceEquals(merged._events[i], events[i])) return false;
        views = keys.Select(key => merged._views.GetValueOrDefault(key)).OfType<RecordView>().ToList();
        return true;
    }
}
