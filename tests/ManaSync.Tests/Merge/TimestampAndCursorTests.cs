using ManaSync.Events;
using ManaSync.Projections.Records;
using ManaSync.Web.Features.Sync;
using Xunit;

namespace ManaSync.Tests.Merge;

public sealed class TimestampAndCursorTests
{
    [Theory]
    [InlineData("2026-01-01T10:05:00.000Z", "2026-01-01T10:05:00.000Z")]
    [InlineData("2026-01-01T10:05:00Z", "2026-01-01T10:05:00.000Z")]
    [InlineData("2026-01-01T12:05:00+02:00", "2026-01-01T10:05:00.000Z")]
    [InlineData("2026-01-01T10:05:00.1234567Z", "2026-01-01T10:05:00.1234567Z")]
    [InlineData("2026-01-01T10:05:00.123456789Z", "2026-01-01T10:05:00.1234567Z")]
    [InlineData("2026-01-01T10:05:00.120Z", "2026-01-01T10:05:00.120Z")]
    [InlineData("2026-01-01t10:05:00z", "2026-01-01T10:05:00.000Z")]
    public void Timestamps_are_read_as_instants_and_written_in_utc_with_at_least_milliseconds(string text, string expected)
    {
        Assert.True(Timestamps.TryParse(text, out var instant));
        Assert.Equal(expected, Timestamps.Format(instant));
    }

    [Theory]
    [InlineData("")]
    [InlineData("yesterday")]
    [InlineData("1700000000000")]
    [InlineData("2026-13-01T10:00:00Z")]
    [InlineData("2026-01-01T25:00:00Z")]
    public void Unreadable_timestamps_are_refused(string text) => Assert.False(Timestamps.TryParse(text, out _));

    [Fact]
    public void Cursor_tokens_compare_as_strings_in_position_order()
    {
        var positions = new[] { new Position(0, 0), new Position(7, 3), new Position(7, 12), new Position(10, 0), new Position(long.MaxValue, int.MaxValue) };

        var tokens = positions.Select(Cursor.Encode).ToList();

        Assert.All(tokens, token => Assert.Matches("^[0-9]{30}$", token));
        Assert.Equal(tokens, tokens.Order(StringComparer.Ordinal));
        Assert.All(positions, position =>
        {
            Assert.True(Cursor.TryRead(Cursor.Encode(position), out var since));
            Assert.Equal(position, since.From);
        });
    }

    [Theory]
    [InlineData("12345")]
    [InlineData("abcdefghijabcdefghijabcdefghij")]
    [InlineData("-00000000000000000010000000000")]
    public void Unreadable_cursors_are_refused(string token) => Assert.False(Cursor.TryRead(token, out _));

    [Fact]
    public void An_rfc3339_cursor_reads_from_the_start_limited_by_time()
    {
        Assert.True(Cursor.TryRead("2026-01-01T10:00:00Z", out var since));
        Assert.Equal(Position.Start, since.From);
        Assert.Equal(new DateTimeOffset(2026, 1, 1, 10, 0, 0, TimeSpan.Zero), since.ModifiedSince);
    }
}
