namespace ManaSync.Events.Upcasting;

/// <summary>
/// Turns a change written at <see cref="From"/> into the shape of the next schema version. Events are
/// never rewritten: upcasters run whenever events are read (merge, audit, rebuild), so the log keeps
/// what clients sent.
/// </summary>
public interface IChangeUpcaster
{
    /// <summary>The version this upcaster reads; it produces version From + 1.</summary>
    int From { get; }

    ChangeRecorded Upcast(ChangeRecorded change);
}
