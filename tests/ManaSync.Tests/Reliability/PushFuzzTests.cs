using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using CsCheck;
using ManaSync.Tests.Support;
using Npgsql;
using Xunit;
using static ManaSync.Testing.Changes;

namespace ManaSync.Tests.Reliability;

/// <summary>
/// Random and mutated bodies thrown at push: batches of plausible changes with odd members, random
/// JSON, deep nesting and corrupted bytes. Never a 5xx, never a batch stored in part, and the server
/// is healthy afterwards. CsCheck prints the seed of a failing body, to replay it.
/// </summary>
public sealed class PushFuzzTests(AppFixture app) : SyncTest(app)
{
    private static readonly DateTimeOffset Start = new(2026, 1, 1, 10, 0, 0, TimeSpan.Zero);

    private static readonly Gen<string> Word = Gen.Char["abcxyz019 _-"].Array[0, 10].Select(chars => Quote(new string(chars)));

    private static readonly Gen<string> Scalar = Gen.OneOf(
        Gen.OneOf("null", "true", "false"),
        Gen.OneOf("0", "-0", "1e400", "-1e400", "1e-400", "123456789012345678901234567890", "9007199254740993", "0.1", "-9223372036854775809"),
        Gen.Int.Select(number => number.ToString(CultureInfo.InvariantCulture)),
        // Lone surrogates, NUL, right-to-left override, emoji, combining marks, zero-width and BOM characters.
        Gen.OneOf(@"""\ud800""", @"""x\udc00""", @"""\u0000""", "\"\u202eevil\"", "\"😀\"", "\"e\u0301\"", "\"\u200b\"", "\"\uFEFF\"", @"""\""""", "\"\""),
        Gen.OneOf(@"""2026-01-01T10:00:00.000Z""", @"""2026-13-45T99:00:00Z""", @"""not a date""", @"""9999-12-31T23:59:59.999Z"""),
        Word);

    // Members a change or batch may have; "spaceId" is left out, since a space write asks the auth service (503 when it is absent).
    private static readonly Gen<string> Key = Gen.OneOf(
        "changes", "table", "id", "op", "data", "fields", "value", "updatedAt", "eventId", "schemaVersion", "deletedAt", "since",
        "clientId", "title", "", "__proto__", @"a\u0000b").Select(Quote);

    private static readonly Gen<string> Value = Nested(3);

    private static readonly Gen<string> Stamp = Gen.Frequency(
        (6, Gen.Int[0, 1_000_000].Select(seconds => Quote(Start.AddSeconds(seconds).ToString("yyyy-MM-ddTHH:mm:ss.fffZ", CultureInfo.InvariantCulture)))),
        (1, Value));

    private static readonly Gen<string> FieldState = Gen.Frequency(
        (6, Gen.Select(Value, Stamp, (value, stamp) => $$"""{"value":{{value}},"updatedAt":{{stamp}}}""")),
        (1, Value));

    private static readonly Gen<string> ChangeText = Gen.Select(
        Member("table", 9, Gen.Frequency((8, Gen.OneOf(@"""tasks""", @"""notes""")), (1, Value))),
        Member("id", 9, Gen.Frequency((8, Word), (1, Value))),
        Member("op", 9, Gen.Frequency((8, Gen.OneOf(@"""insert""", @"""update""", @"""delete""")), (1, Value))),
        Member("data", 5, Gen.Frequency((4, Object(Value)), (1, Value))),
        Member("fields", 5, Gen.Frequency((4, Gen.Select(Key, FieldState).List[0, 3].Select(Members)), (1, Value))),
        Member("eventId", 7, Gen.Frequency((6, Gen.Guid.Select(id => Quote(id.ToString()))), (1, Value))),
        Gen.Frequency((6, Gen.Const("")), (1, Member("deletedAt", 10, Stamp)), (1, Member("schemaVersion", 10, Value)),
            (1, Gen.Select(Key, Value, (key, value) => $"{key}:{value}"))),
        (table, id, op, data, fields, eventId, extra) =>
            "{" + string.Join(",", new[] { table, id, op, data, fields, eventId, extra }.Where(member => member.Length > 0)) + "}");

    private static readonly Gen<string> BatchText = Gen.Select(ChangeText.List[0, 6],
        Gen.Frequency((6, Gen.Const("")),
            (1, Gen.Select(Gen.OneOf("since", "schemaVersion", "clientId", "changes").Select(Quote), Value, (key, value) => $",{key}:{value}"))),
        (changes, extra) => $$"""{"changes":[{{string.Join(",", changes)}}]{{extra}}}""");

    private static readonly Gen<byte[]> Body = Gen.Frequency(
        (6, BatchText.Select(Encoding.UTF8.GetBytes)),
        (3, Gen.Select(BatchText, Gen.Int[0, 3], Gen.Int[0, int.MaxValue], Gen.Byte,
            (batch, kind, at, value) => Mutate(Encoding.UTF8.GetBytes(batch), kind, at, value))),
        (1, Value.Select(Encoding.UTF8.GetBytes)),
        (1, Gen.Int[60, 3000].Select(depth => Encoding.UTF8.GetBytes($$"""{"changes":{{new string('[', depth)}}{{new string(']', depth)}}}"""))),
        (1, Gen.Int[60, 3000].Select(depth => Encoding.UTF8.GetBytes(string.Concat(Enumerable.Repeat("""{"data":""", depth)) + "1" + new string('}', depth)))));

    [Fact]
    public async Task Random_and_mutated_push_bodies_never_cause_a_5xx_or_a_partly_stored_batch()
    {
        var device = App.ClientFor("alice", "fuzzer");
        var accepted = 0;
        await Body.SampleAsync(async body =>
        {
            var before = await StoredEventCountAsync();
            var reply = await device.PushRawAsync("todo", body);
            var stored = await StoredEventCountAsync() - before;

            Assert.True((int)reply.Status < 500, $"{(int)reply.Status}: {reply.Text}");
            if (reply.Status == HttpStatusCode.OK)
            {
                accepted++;
                Assert.Equal(ChangesIn(body), stored);
            }
            else
            {
                Assert.NotNull(reply.Json["error"]);
                Assert.Equal(0, stored);
            }
        }, iter: 400, threads: 1);

        var health = await App.Client.GetAsync("/health");
        var good = await device.PushAsync("todo", Batch(Insert("tasks", "after-fuzzing", new { title = "still fine" })));
        Assert.Equal(HttpStatusCode.OK, health.StatusCode);
        good.AssertStatus(HttpStatusCode.OK);
        Assert.InRange(accepted, 1, 399);
    }

    private static Gen<string> Nested(int depth) => depth == 0
        ? Scalar
        : Gen.Frequency((4, Scalar), (1, Nested(depth - 1).List[0, 4].Select(items => "[" + string.Join(",", items) + "]")), (1, Object(Nested(depth - 1))));

    private static Gen<string> Object(Gen<string> value) => Gen.Select(Key, value).List[0, 4].Select(Members);

    private static string Members(List<(string Key, string Value)> members) =>
        "{" + string.Join(",", members.Select(member => $"{member.Key}:{member.Value}")) + "}";

    /// <summary>A member present in <paramref name="tenths"/> of the changes.</summary>
    private static Gen<string> Member(string name, int tenths, Gen<string> value) =>
        Gen.Select(Gen.Int[0, 9], value, (dice, chosen) => dice < tenths ? $"{Quote(name)}:{chosen}" : "");

    /// <summary>Replaces, inserts or deletes one byte, or cuts the body short.</summary>
    private static byte[] Mutate(byte[] body, int kind, int at, byte value)
    {
        var bytes = body.ToList();
        var position = at % (bytes.Count + 1);
        switch (kind)
        {
            case 0 when position < bytes.Count: bytes[position] = value; break;
            case 1: bytes.Insert(position, value); break;
            case 2 when position < bytes.Count: bytes.RemoveAt(position); break;
            default: bytes.RemoveRange(position, bytes.Count - position); break;
        }
        return [.. bytes];
    }

    private static int ChangesIn(byte[] body)
    {
        using var document = JsonDocument.Parse(body, new JsonDocumentOptions { AllowDuplicateProperties = false });
        return document.RootElement.GetProperty("changes").GetArrayLength();
    }

    private async Task<long> StoredEventCountAsync()
    {
        await using var connection = new NpgsqlConnection(App.ConnectionString);
        await connection.OpenAsync();
        await using var count = new NpgsqlCommand("select count(*) from manasync.mt_events", connection);
        return (long)(await count.ExecuteScalarAsync())!;
    }

    private static string Quote(string text) => "\"" + text + "\"";
}
