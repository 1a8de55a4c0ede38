namespace ManaSync.Testing;

public static class UniqueIds
{
    /// <summary>A fresh id (e.g. a user nobody else in the run has), so tests on a shared host do not meet.</summary>
    public static string New(string prefix) => prefix + "-" + Guid.NewGuid().ToString("N")[..8];
}
