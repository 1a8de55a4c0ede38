using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Text.Json.Nodes;
using ManaSync.Testing;
using ManaSync.Tests.Support;
using Xunit;
using static ManaSync.Testing.Changes;

namespace ManaSync.Tests.Reliability;

/// <summary>
/// Devices with skewed clocks write the same fields at once, with many exact timestamp ties; once
/// they stop, every copy — kept up incrementally or pulled from scratch — is the same, and each field
/// holds a value written with the largest acknowledged timestamp.
/// </summary>
public sealed class ConvergenceTests(AppFixture app) : SyncTest(app)
{
    private static readonly DateTimeOffset Start = new(2026, 1, 1, 10, 0, 0, TimeSpan.Zero);
    private static readonly int[] ClockSkewSeconds = [-2, -1, 0, 0, 1, 2];
    private static readonly string[] Records = ["r0", "r1", "r2"];
    private static readonly string[] Fields = ["title", "done", "order"];
    private const int Rounds = 10;

    private sealed record Write(string Record, string Field, string Value, DateTimeOffset Stamp);

    /// <summary>A device's local copy, kept as the Dexie client keeps it: per field a value and its timestamp.</summary>
    private sealed class Replica
    {
        public Dictionary<(string Record, string Field), (string Value, DateTimeOffset Stamp)> State { get; } = [];
        public string? Cursor { get; set; }

        public void WriteLocally(Write write) => State[(write.Record, write.Field)] = (write.Value, write.Stamp);

        /// <summary>The client's apply step: an incoming field wins unless the local one is strictly newer.</summary>
        public void Apply(Reply reply)
        {
            // A pushed field that lost comes back as a conflict carrying the server's winner.
            foreach (var conflict in reply.Conflicts)
                State[(conflict["id"]!.GetValue<string>(), conflict["field"]!.GetValue<string>())] =
                    (conflict["serverValue"]!.GetValue<string>(), Parse(conflict["serverTimestamp"]!));
            ApplyChanges(reply.Changes);
            Cursor = reply.Cursor;
        }

        public void ApplyChanges(IEnumerable<JsonObject> changes)
        {
            foreach (var change in changes)
            foreach (var (field, state) in change["fields"]!.AsObject())
            {
                var key = (change["id"]!.GetValue<string>(), field);
                var stamp = Parse(state!["updatedAt"]!);
                if (!State.TryGetValue(key, out var local) || stamp >= local.Stamp)
                    State[key] = (state["value"]!.GetValue<string>(), stamp);
            }
        }
    }

    [Fact]
    public async Task Devices_writing_the_same_fields_with_ties_and_skewed_clocks_converge_on_the_latest_timestamps()
    {
        var random = new Random(20261123);
        // Ties come from clocks that agree at different moments, and from the last round, in which every
        // device writes one field with the same timestamp at once: the latest arrival must win everywhere.
        var plans = ClockSkewSeconds.Select((skew, device) => Enumerable.Range(0, Rounds).Select(round =>
            Enumerable.Range(0, random.Next(1, 3)).Select(k => new Write(
                Records[random.Next(Records.Length)], Fields[random.Next(Fields.Length)], $"d{device}.r{round}.k{k}",
                Start.AddSeconds(round + skew))).ToList()).ToList()).ToList();
        for (var device = 0; device < plans.Count; device++)
            plans[device][^1].Add(new Write("r0", "title", $"d{device}.tie", Start.AddSeconds(Rounds + 5)));
        var acknowledged = new ConcurrentBag<Write>();
        var replicas = ClockSkewSeconds.Select(_ => new Replica()).ToList();

        for (var round = 0; round < Rounds; round++)
        {
            var thisRound = round;
            await Task.WhenAll(replicas.Select(async (replica, device) =>
            {
                var client = App.ClientFor("alice", $"device-{device}");
                var writes = plans[device][thisRound];
                writes.ForEach(replica.WriteLocally);
                var changes = writes.Select(write => (object)Update("tasks", write.Record, write.Field, write.Value, Format(write.Stamp))).ToArray();
                var reply = await client.PushAsync("todo", replica.Cursor is null ? Batch(changes) : BatchSince(replica.Cursor, changes));
                replica.Apply(reply.AssertStatus(HttpStatusCode.OK));
                writes.ForEach(acknowledged.Add);
                if ((thisRound + device) % 2 == 0) replica.Apply(await client.PullAsync("todo", "tasks", replica.Cursor));
            }));
        }

        for (var device = 0; device < replicas.Count; device++)
        {
            var (changes, cursor) = await App.ClientFor("alice", $"device-{device}").PullAllAsync("todo", "tasks", replicas[device].Cursor);
            replicas[device].ApplyChanges(changes);
            replicas[device].Cursor = cursor;
        }
        var fromScratch = new Replica();
        fromScratch.ApplyChanges((await App.ClientFor("alice", "new-device").PullAllAsync("todo", "tasks")).Changes);
        var pageByPage = new Replica();
        await PullPageByPageAsync(App.ClientFor("alice", "new-phone"), pageByPage);

        var expected = acknowledged.GroupBy(write => (write.Record, write.Field)).ToDictionary(field => field.Key, field =>
        {
            var latest = field.Max(write => write.Stamp);
            return (Stamp: latest, Candidates: field.Where(write => write.Stamp == latest).Select(write => write.Value).ToHashSet());
        });
        Assert.Equal(expected.Keys.Order(), fromScratch.State.Keys.Order());
        foreach (var (key, (value, stamp)) in fromScratch.State)
        {
            Assert.Equal(expected[key].Stamp, stamp);
            Assert.Contains(value, expected[key].Candidates);
        }
        Assert.Equal(fromScratch.State.OrderBy(field => field.Key), pageByPage.State.OrderBy(field => field.Key));
        Assert.All(replicas, replica => Assert.Equal(fromScratch.State.OrderBy(field => field.Key), replica.State.OrderBy(field => field.Key)));
    }

    private static async Task PullPageByPageAsync(SyncClient device, Replica replica)
    {
        while (true)
        {
            var page = (await device.PullAsync("todo", "tasks", replica.Cursor, limit: 1)).AssertStatus(HttpStatusCode.OK);
            replica.ApplyChanges(page.Changes);
            replica.Cursor = page.Cursor;
            if (!page.HasMore) return;
        }
    }

    private static string Format(DateTimeOffset stamp) => stamp.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ss.fffZ", CultureInfo.InvariantCulture);

    private static DateTimeOffset Parse(JsonNode stamp) => DateTimeOffset.Parse(stamp.GetValue<string>(), CultureInfo.InvariantCulture);
}
