using ManaSync.Events;
using Marten.Events.Projections;

namespace ManaSync.Projections.Records;

/// <summary>
/// Inline projection: every appended <see cref="ChangeRecorded"/> is merged into its record's view in
/// the same transaction as the append, so a pull never sees an event without its merge.
/// </summary>
public partial class RecordViewProjection : MultiStreamProjection<RecordView, string>
{
    public RecordViewProjection()
    {
        Identity<ChangeRecorded>(RecordKey.For);
    }

    public RecordView Create(ChangeRecorded change)
    {
        var view = RecordView.Create(change);
        view.Apply(change);
        return view;
    }

    public void Apply(ChangeRecorded change, RecordView view) => view.Apply(change);
}
