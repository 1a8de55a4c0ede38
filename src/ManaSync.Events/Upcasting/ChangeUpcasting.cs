namespace ManaSync.Events.Upcasting;

/// <summary>
/// The migration chain from schema version 1 to the newest one. The newest version the server
/// accepts is 1 + the number of upcasters: it can only be raised by adding one.
/// </summary>
public sealed class ChangeUpcasting
{
    private readonly IReadOnlyList<IChangeUpcaster> _chain;

    public ChangeUpcasting(IEnumerable<IChangeUpcaster> upcasters)
    {
        _chain = upcasters.OrderBy(upcaster => upcaster.From).ToList();
        for (var i = 0; i < _chain.Count; i++)
            if (_chain[i].From != i + 1)
                throw new InvalidOperationException(
                    $"Upcasters must form a chain from version 1 without gaps; found one from version {_chain[i].From} at step {i + 1}.");
    }

    public static readonly ChangeUpcasting None = new([]);

    public int CurrentVersion => _chain.Count + 1;

    /// <summary>The change in the newest schema's shape (unchanged when it already is).</summary>
    public ChangeRecorded ToCurrent(ChangeRecorded change)
    {
        for (var version = Math.Max(change.SchemaVersion, 1); version < CurrentVersion; version++)
            change = _chain[version - 1].Upcast(change) with { SchemaVersion = version + 1 };
        return change;
    }
}
