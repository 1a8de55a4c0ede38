using JasperFx.Events;
using JasperFx.Events.Projections;
using ManaSync.Events;
using ManaSync.Events.Upcasting;
using Marten;
using Marten.Events.Projections;

namespace ManaSync.Projections.Records;

/// <summary>
/// Inline projection: every appended <see cref="ChangeRecorded"/> is merged into its record's view in
/// the same transaction as the append, so a pull never sees an event without its merge. Rebuilds replay
/// the events through it in their order.
/// </summary>
/// <remarks>
/// Events are merged in the newest schema's shape: older ones are upcast as they are read. It loads the
/// views a set of events touches in one query, merges in memory (<see cref="RecordViews.Apply"/>, the one
/// definition of a merge) and writes them back in one statement (<see cref="RecordViewUpsert"/>): a push's
/// fifty views cost PostgreSQL one insert, not fifty. When the write path has merged the same events into the
/// views it read under its locks (<see cref="MergedViews"/>), it writes those.
/// </remarks>
public sealed class RecordViewProjection : ProjectionBase, IProjection
{
    private readonly ChangeUpcasting _upcasting;
    private readonly RecordViewUpsert _upsert;

    public RecordViewProjection(ChangeUpcasting upcasting, string schema)
    {
        _upcasting = upcasting;
        _upsert = new RecordViewUpsert(schema);
        Name = nameof(RecordView);
        IncludeType<ChangeRecorded>();
        RegisterPublishedType(typeof(RecordView));
        // A rebuild starts from no views, as it did with the Marten aggregation this projection replaced.
        Options.DeleteViewTypeOnTeardown<RecordView>();
    }

    public async Task ApplyAsync(IDocumentOperations operations, IReadOnlyList<IEvent> events, CancellationToken cancellation)
    {
        var appended = new List<ChangeRecorded>(events.Count);
        foreach (var e in events)
            if (e.Data is ChangeRecorded change) appended.Add(change);
        if (appended.Count == 0) return;
        var changes = appended.Select(_upcasting.ToCurrent).ToList();
        var keys = changes.SelectMany(RecordKey.Of).Distinct().ToArray();
        if (MergedViews.TryTake(operations, appended, keys, out var merged))
        {
            _upsert.Queue(operations, merged);
            return;
        }

        var views = (await operations.LoadManyAsync<RecordView>(cancellation, keys)).ToDictionary(view => view.Id);
        foreach (var change in changes) RecordViews.Apply(views, change);
        _upsert.Queue(operations, views.Values);
    }
}
