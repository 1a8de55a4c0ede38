using System.Globalization;
using System.Text.RegularExpressions;
using ManaSync.Events;
using ManaSync.Projections.Records;

namespace ManaSync.Web.Features.Sync;

/// <summary>
/// Where a client resumes reading: every change at or after <see cref="From"/>, or, for a legacy
/// RFC 3339 cursor, from where <see cref="FeedClock"/> places that time.
/// </summary>
/// <param name="HoldsNothing">The reader has never received anything from this feed (no cursor, or the
/// deployed clients' initial "1970-01-01T00:00:00.000Z"): deletes mean nothing to it.</param>
public readonly record struct Since(Position From, DateTimeOffset? Legacy = null, bool HoldsNothing = false)
{
    public static readonly Since Beginning = new(Position.Start, HoldsNothing: true);
}

/// <summary>
/// Cursor tokens: "2026-12-02T11:59:59Z_00000000000000004711_0000000003" — a time in whole seconds, then
/// the position (transaction id, 20 digits; index in it, 10 digits).
/// </summary>
/// <remarks>
/// Deployed clients compare cursors as strings: they push with the minimum over their tables' cursors,
/// starting from the current ISO time and from "1970-01-01T00:00:00.000Z" for a table never read, and may
/// still hold RFC 3339 cursors of the Go service. The time (<see cref="FeedClock"/>) never decreases along
/// the feed and the position is fixed-width, so tokens sort as the feed does; a token sorts above the
/// initial cursor, and against an RFC 3339 time as its second does: its 'Z' sorts above the '.' of a
/// fraction, and above a time of the same whole second it is the longer string. docs/architecture.md
/// has the argument in full.
/// </remarks>
public static partial class Cursor
{
    private const string TimeFormat = "yyyy-MM-dd'T'HH:mm:ss'Z'";

    [GeneratedRegex(@"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z_(\d{20})_(\d{10})$")]
    private static partial Regex Token();

    /// <summary>The 30-digit tokens of earlier versions, which sort below every time.</summary>
    [GeneratedRegex(@"^\d{30}$")]
    private static partial Regex DigitsOnly();

    /// <param name="time">The greatest time of the events before the position; null when there are none.</param>
    public static string Encode(Position position, DateTimeOffset? time) =>
        (time ?? DateTimeOffset.UnixEpoch).UtcDateTime.ToString(TimeFormat, CultureInfo.InvariantCulture) + "_" +
        position.Tx.ToString("D20", CultureInfo.InvariantCulture) + "_" + position.Index.ToString("D10", CultureInfo.InvariantCulture);

    /// <summary>Absent or empty means the beginning; anything unreadable is refused.</summary>
    public static bool TryRead(string? token, out Since since)
    {
        since = Since.Beginning;
        if (string.IsNullOrEmpty(token)) return true;
        if (Token().Match(token) is { Success: true } match &&
            long.TryParse(match.Groups[1].ValueSpan, NumberStyles.None, CultureInfo.InvariantCulture, out var tx) &&
            int.TryParse(match.Groups[2].ValueSpan, NumberStyles.None, CultureInfo.InvariantCulture, out var index))
        {
            since = new Since(new Position(tx, index));
            return true;
        }
        if (DigitsOnly().IsMatch(token))
        {
            // Such a token sorts below every other cursor, so a device holding one sends it as its minimum
            // whatever its other tables hold: only reading from the start is safe for all of them.
            since = new Since(Position.Start);
            return true;
        }
        if (Timestamps.TryParse(token, out var legacy))
        {
            since = new Since(Position.Start, legacy, HoldsNothing: legacy < DateTimeOffset.UnixEpoch.AddSeconds(1));
            return true;
        }
        return false;
    }
}
