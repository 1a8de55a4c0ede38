using System.Text.Json.Nodes;
using ManaSync.Testing;
using ManaSync.Tests.Support;
using Xunit;

namespace ManaSync.Tests.Compatibility;

/// <summary>
/// The deployed client's cursor rules, replayed literally (<see cref="DeployedClient"/>): a cursor per
/// table, pushes and streams from the string minimum over them (starting from the current ISO time),
/// and every table's cursor set to a push's syncedUntil. Whatever mix of cursors a device holds,
/// it must end with every record.
/// </summary>
public sealed class DeployedClientCursorTests(AppFixture app) : SyncTest(app)
{
    private static readonly string[] Tables = ["tags", "notes"];

    private DeployedClient Device(string clientId, params string[] tables) =>
        App.DeviceFor("alice", clientId, "notes", tables.Length > 0 ? tables : Tables);

    private static async Task WriteAsync(DeployedClient writer, string prefix, int count)
    {
        for (var i = 0; i < count; i++)
        {
            writer.Create("tags", new JsonObject { ["id"] = $"{prefix}-tag-{i}", ["name"] = $"tag {i}" });
            writer.Create("notes", new JsonObject { ["id"] = $"{prefix}-note-{i}", ["text"] = $"note {i}" });
        }
        await writer.PushAllAsync();
    }

    /// <summary>What a device that syncs every table from scratch holds.</summary>
    private async Task<Dictionary<string, SortedDictionary<string, string>>> EverythingAsync()
    {
        var fresh = Device("fresh-" + Guid.NewGuid().ToString("N")[..6]);
        await fresh.PullAsync();
        return Tables.ToDictionary(table => table, fresh.Rows);
    }

    private async Task AssertHoldsEverythingAsync(DeployedClient device)
    {
        await device.PullAsync();
        var everything = await EverythingAsync();
        Assert.All(Tables, table => Assert.Equal(everything[table], device.Rows(table)));
        Assert.NotEmpty(everything["notes"]);
    }

    [Fact]
    public async Task A_table_whose_first_pull_failed_still_receives_everything()
    {
        var writer = Device("writer");
        await WriteAsync(writer, "early", 3);
        var phone = Device("phone");

        await phone.PullAsync(failing: "notes");
        await WriteAsync(writer, "later", 2);
        phone.Create("tags", new JsonObject { ["id"] = "phone-tag", ["name"] = "from the phone" });
        Assert.Equal(DeployedClient.InitialCursor, phone.CursorOf("notes"));
        await phone.PushAllAsync();

        await AssertHoldsEverythingAsync(phone);
    }

    [Fact]
    public async Task A_table_added_in_a_client_update_receives_everything()
    {
        var writer = Device("writer");
        await WriteAsync(writer, "early", 3);
        var phone = Device("phone", "tags");
        await phone.PullAsync();
        await WriteAsync(writer, "later", 1);

        phone.AddTable("notes");
        phone.Create("tags", new JsonObject { ["id"] = "phone-tag", ["name"] = "from the phone" });
        await phone.PushAllAsync();

        await AssertHoldsEverythingAsync(phone);
    }

    /// <summary>Cursors as the Go service wrote them (RFC 3339, fraction trimmed), beside tokens of ManaSync.</summary>
    [Theory]
    [InlineData("2026-11-30T10:00:00.123456Z")]
    [InlineData("2026-11-30T10:00:00Z")]
    [InlineData("1970-01-01T00:00:00.000Z")]
    public async Task Legacy_cursors_mixed_with_new_ones_lose_nothing(string legacy)
    {
        var writer = Device("writer");
        await WriteAsync(writer, "early", 3);
        var phone = Device("phone", "tags", "notes");
        phone.RestoreCursor("tags", legacy);
        phone.RestoreCursor("notes", legacy);
        await phone.PullAsync(failing: "notes");
        await WriteAsync(writer, "later", 2);

        phone.Create("tags", new JsonObject { ["id"] = "phone-tag", ["name"] = "from the phone" });
        await phone.PushAllAsync();

        await AssertHoldsEverythingAsync(phone);
    }

    /// <summary>
    /// Several devices write, push, pull (some pulls failing part-way) and gain a table in a client update,
    /// in a random order; afterwards each pulls once more and holds what a fresh device holds.
    /// </summary>
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    public async Task Devices_following_the_client_rules_in_any_order_end_with_every_record(int seed)
    {
        var random = new Random(seed);
        var devices = new[] { Device("a"), Device("b", "tags"), Device("c", "notes", "tags") };
        var updated = new HashSet<DeployedClient>();
        for (var step = 0; step < 40; step++)
        {
            var device = devices[random.Next(devices.Length)];
            switch (random.Next(5))
            {
                case 0 or 1:
                    var table = device == devices[1] && !updated.Contains(device) ? "tags" : Tables[random.Next(2)];
                    device.Create(table, new JsonObject { ["id"] = $"{device.ClientId}-{step}", ["n"] = step });
                    break;
                case 2:
                    await device.PushAsync();
                    break;
                case 3:
                    await device.PullAsync(failing: random.Next(3) == 0 ? [Tables[random.Next(2)]] : []);
                    break;
                default:
                    if (device == devices[1] && updated.Add(device)) device.AddTable("notes");
                    break;
            }
        }

        foreach (var device in devices) await device.PushAllAsync();
        if (updated.Add(devices[1])) devices[1].AddTable("notes");
        foreach (var device in devices) await AssertHoldsEverythingAsync(device);
    }
}
