using ManaSync.Events;

namespace ManaSync.Projections.Records;

/// <summary>Record views held in memory, changed exactly as the projection changes them in the database.</summary>
public static class RecordViews
{
    /// <summary>Applies a change (in the newest schema's shape) to every view it touches; a view it moved the record out of must be among them.</summary>
    public static void Apply(IDictionary<string, RecordView> views, ChangeRecorded change)
    {
        var keys = RecordKey.Of(change);
        foreach (var key in keys)
        {
            if (views.TryGetValue(key, out var view)) view.Apply(change);
            else if (key == keys[^1])
            {
                views[key] = view = RecordView.Create(change);
                view.Apply(change);
            }
        }
    }
}
