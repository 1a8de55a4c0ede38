using System.Globalization;
using ManaSync.Events;
using ManaSync.Projections.Records;

namespace ManaSync.Web.Features.Sync;

/// <summary>
/// Where a client resumes reading: every change at or after <see cref="From"/>. A legacy RFC 3339
/// cursor reads from the start, limited to records modified since that time.
/// </summary>
public readonly record struct Since(Position From, DateTimeOffset? ModifiedSince = null)
{
    public static readonly Since Beginning = new(Position.Start);
}

/// <summary>
/// Cursor tokens: 30 digits, the transaction id (20) then the index in it (10). Fixed-width digits
/// compare as strings in the same order as positions, which deployed clients rely on.
/// </summary>
public static class Cursor
{
    public const int Width = 30;

    public static string Encode(Position position) =>
        position.Tx.ToString("D20", CultureInfo.InvariantCulture) + position.Index.ToString("D10", CultureInfo.InvariantCulture);

    /// <summary>Absent or empty means the beginning; anything unreadable is refused.</summary>
    public static bool TryRead(string? token, out Since since)
    {
        since = Since.Beginning;
        if (string.IsNullOrEmpty(token)) return true;
        if (token.Length == Width && token.All(char.IsAsciiDigit) &&
            long.TryParse(token.AsSpan(0, 20), NumberStyles.None, CultureInfo.InvariantCulture, out var tx) &&
            int.TryParse(token.AsSpan(20), NumberStyles.None, CultureInfo.InvariantCulture, out var index))
        {
            since = new Since(new Position(tx, index));
            return true;
        }
        if (Timestamps.TryParse(token, out var legacy))
        {
            since = new Since(Position.Start, legacy);
            return true;
        }
        return false;
    }
}
