using ManaSync.Events;
using ManaSync.Events.Upcasting;
using Marten.Events.Projections;

namespace ManaSync.Projections.Records;

/// <summary>
/// Inline projection: every appended <see cref="ChangeRecorded"/> is merged into its record's view in
/// the same transaction as the append, so a pull never sees an event without its merge.
/// </summary>
/// <remarks>Events are merged in the newest schema's shape: older ones are upcast as they are read.</remarks>
public partial class RecordViewProjection : MultiStreamProjection<RecordView, string>
{
    private readonly ChangeUpcasting _upcasting;

    public RecordViewProjection(ChangeUpcasting upcasting)
    {
        _upcasting = upcasting;
        // A change that moved its record is applied to the view it left as well (RecordView.Apply).
        Identities<ChangeRecorded>(RecordKey.Of);
    }

    public RecordView Create(ChangeRecorded change)
    {
        var view = RecordView.Create(change);
        view.Apply(_upcasting.ToCurrent(change));
        return view;
    }

    public void Apply(ChangeRecorded change, RecordView view) => view.Apply(_upcasting.ToCurrent(change));
}
