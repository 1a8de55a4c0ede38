namespace ManaSync.Projections.Records;

/// <summary>
/// Where a write sits in commit order: the PostgreSQL transaction id (xid8) of the push that made it,
/// then its index inside that push. Pull cursors are positions (see docs/architecture.md).
/// </summary>
public readonly record struct Position(long Tx, int Index) : IComparable<Position>
{
    public static readonly Position Start = new(0, 0);

    public int CompareTo(Position other)
    {
        var byTx = Tx.CompareTo(other.Tx);
        return byTx != 0 ? byTx : Index.CompareTo(other.Index);
    }

    public static bool operator <(Position a, Position b) => a.CompareTo(b) < 0;
    public static bool operator >(Position a, Position b) => a.CompareTo(b) > 0;
    public static bool operator <=(Position a, Position b) => a.CompareTo(b) <= 0;
    public static bool operator >=(Position a, Position b) => a.CompareTo(b) >= 0;

    public static Position Max(Position a, Position b) => a >= b ? a : b;
}
