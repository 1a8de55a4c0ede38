using CsCheck;
using ManaSync.Events;
using ManaSync.Projections.Records;
using ManaSync.Web.Features.Sync;
using Xunit;

namespace ManaSync.Core.Tests.Sync;

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

    private static readonly DateTimeOffset Epoch = new(2026, 12, 2, 11, 59, 59, TimeSpan.Zero);

    [Fact]
    public void Tokens_with_a_non_decreasing_time_compare_as_strings_in_position_order()
    {
        var positions = new[] { new Position(0, 0), new Position(7, 3), new Position(7, 12), new Position(10, 0), new Position(long.MaxValue, int.MaxValue) };
        var times = new DateTimeOffset?[] { null, Epoch, Epoch, Epoch.AddSeconds(30), Epoch.AddDays(400) };

        var tokens = positions.Select((position, i) => Cursor.Encode(position, times[i])).ToList();

        Assert.Equal("2026-12-02T11:59:59Z_00000000000000000007_0000000003", tokens[1]);
        Assert.Equal(tokens, tokens.Order(StringComparer.Ordinal));
        Assert.All(positions, position =>
        {
            Assert.True(Cursor.TryRead(Cursor.Encode(position, Epoch), out var since));
            Assert.Equal(new Since(position), since);
        });
    }

    [Fact]
    public void A_token_sorts_above_the_clients_initial_cursor_and_below_the_current_time()
    {
        var token = Cursor.Encode(new Position(5, 0), DateTimeOffset.UtcNow.AddSeconds(-1));

        Assert.True(string.CompareOrdinal(Cursor.Encode(Position.Start, null), "1970-01-01T00:00:00.000Z") > 0);
        Assert.True(string.CompareOrdinal(token, "1970-01-01T00:00:00.000Z") > 0);
        Assert.True(string.CompareOrdinal(token, DateTimeOffset.UtcNow.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'")) < 0);
    }

    /// <summary>
    /// Against an RFC 3339 cursor, as the Go service (trailing zeros of the fraction dropped, none at all on
    /// a whole second) and the clients (always milliseconds) write them, a token sorts as its second does:
    /// below a time in a later second, above one in the same or an earlier second.
    /// </summary>
    [Fact]
    public void Against_a_legacy_cursor_a_token_sorts_as_its_second()
    {
        Gen.Select(Gen.Int[0, 3], Gen.Int[0, 999_999_999], Gen.Int[0, 2], Gen.Int[-2, 2]).Sample((second, nanos, format, offset) =>
        {
            var legacy = Epoch.AddSeconds(second).AddTicks(nanos / 100);
            var text = format switch
            {
                0 => legacy.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'"),
                1 => legacy.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.FFFFFFF'Z'").Replace(".Z", "Z"),
                _ => legacy.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'"),
            };
            var tokenSecond = Epoch.AddSeconds(second + offset);

            var token = Cursor.Encode(new Position(42, 1), tokenSecond);

            Assert.Equal(offset < 0, string.CompareOrdinal(token, text) < 0);
        }, iter: 2000);
    }

    [Theory]
    [InlineData("12345")]
    [InlineData("abcdefghijabcdefghijabcdefghij")]
    [InlineData("-00000000000000000010000000000")]
    [InlineData("2026-12-02T11:59:59Z_0000000000000000007_0000000003")]
    [InlineData("2026-12-02T11:59:59Z_00000000000000000007-0000000003")]
    public void Unreadable_cursors_are_refused(string token) => Assert.False(Cursor.TryRead(token, out _));

    [Fact]
    public void An_rfc3339_cursor_is_a_legacy_time_and_only_the_clients_initial_one_holds_nothing()
    {
        Assert.True(Cursor.TryRead("2026-01-01T10:00:00Z", out var since));
        Assert.Equal(new DateTimeOffset(2026, 1, 1, 10, 0, 0, TimeSpan.Zero), since.Legacy);
        Assert.False(since.HoldsNothing);
        Assert.True(Cursor.TryRead("1970-01-01T00:00:00.000Z", out var initial));
        Assert.True(initial.HoldsNothing);
    }

    [Fact]
    public void A_digits_only_token_of_earlier_versions_reads_from_the_start_for_a_reader_that_holds_data()
    {
        Assert.True(Cursor.TryRead("000000000000000012340000000005", out var since));
        Assert.Equal(new Since(Position.Start), since);
    }
}
