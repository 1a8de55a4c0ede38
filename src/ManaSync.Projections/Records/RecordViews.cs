using ManaSync.Events;

namespace ManaSync.Projections.Records;

/// <summary>Record views held in memory, changed exactly as the projection changes them in the database.</summary>
public static class RecordViews
{
    /// <summary>Applies a change (in the newest schema's shape) to every view it touches; a view it moved the record out of must be among them.</summary>
    /// <param name="only">Apply it to this view alone, if it touches it.</param>
    public static void Apply(IDictionary<string, RecordView> views, ChangeRecorded change, string? only = null) =>
        Apply(views, change, RecordKey.Of(change), only);

    /// <param name="keys">The change's <see cref="RecordKey.Of"/>, when the caller has them already.</param>
    public static void Apply(IDictionary<string, RecordView> views, ChangeRecorded change, IReadOnlyList<string> keys, string? only = null)
    {
        foreach (var key in keys)
        {
            if (only is not null && key != only) continue;
            if (views.TryGetValue(key, out var view)) view.Apply(change);
            else if (key == keys[^1])
            {
                views[key] = view = RecordView.Create(change);
                view.Apply(change);
            }
        }
    }
}
