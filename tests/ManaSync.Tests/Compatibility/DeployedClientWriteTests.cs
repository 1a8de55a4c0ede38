using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using ManaSync.Testing;
using ManaSync.Tests.Support;
using Microsoft.Extensions.Time.Testing;
using Xunit;

namespace ManaSync.Tests.Compatibility;

/// <summary>
/// Writes the deployed web client makes, sent and applied exactly as its sync engine does
/// (<see cref="DeployedClient"/>): cleared fields, key paths and soft deletes racing edits.
/// </summary>
public sealed class DeployedClientWriteTests(AppFixture app) : SyncTest(app)
{
    private readonly FakeTimeProvider _time = new(DateTimeOffset.UtcNow);

    private DeployedClient Device(string clientId, string table) =>
        App.DeviceFor("alice", clientId, "places", [table], _time.GetUtcNow);

    private void Later() => _time.Advance(TimeSpan.FromSeconds(1));

    [Fact]
    public async Task A_field_set_to_undefined_is_stored_and_pulled_as_null()
    {
        var laptop = Device("laptop", "places");
        var phone = Device("phone", "places");
        laptop.Create("places", new JsonObject { ["id"] = "p1", ["name"] = "Café", ["description"] = "by the river" });
        await laptop.PushAllAsync();
        await phone.PullAsync();
        Later();

        laptop.Update("places", "p1", ("description", DeployedClient.Undefined));
        var reply = (await laptop.PushAsync())!;
        await phone.PullAsync();

        reply.AssertStatus(HttpStatusCode.OK);
        Assert.Equal(0, laptop.PendingCount);
        var row = phone.Row("places", "p1")!;
        Assert.True(row.ContainsKey("description"));
        Assert.Null(row["description"]);
        Assert.Equal("Café", row["name"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_field_that_is_null_instead_of_an_object_is_still_refused()
    {
        var reply = await App.ClientFor("alice").PushRawAsync("places",
            Encoding.UTF8.GetBytes("""{"changes":[{"table":"places","id":"p1","op":"update","fields":{"description":null}}]}"""));

        reply.AssertStatus(HttpStatusCode.BadRequest);
        Assert.Empty(await App.StoredEventsAsync());
    }

    private static JsonObject Predefined() => new() { ["source"] = new JsonObject { ["kind"] = "predefined", ["id"] = "forest" }, ["blur"] = 2 };

    private static JsonObject Generated() => new() { ["source"] = new JsonObject { ["kind"] = "generated", ["prompt"] = "dunes" } };

    /// <summary>
    /// The laptop replaces the whole wallpaper, the phone changes one nested property with a key path.
    /// Whichever write is later wins where they overlap, in either order of pushing, on both devices and
    /// on a device that syncs for the first time afterwards.
    /// </summary>
    [Theory]
    [InlineData(true, true)]
    [InlineData(true, false)]
    [InlineData(false, true)]
    [InlineData(false, false)]
    public async Task Whole_object_and_key_path_writes_end_the_same_on_every_device(bool keyPathIsLater, bool laptopPushesFirst)
    {
        var laptop = Device("laptop", "scenes");
        var phone = Device("phone", "scenes");
        laptop.Create("scenes", new JsonObject { ["id"] = "home", ["name"] = "Home", ["wallpaper"] = Predefined() });
        await laptop.PushAllAsync();
        await phone.PullAsync();
        Later();

        if (keyPathIsLater)
        {
            laptop.Update("scenes", "home", ("wallpaper", Generated()));
            Later();
            phone.Update("scenes", "home", ("wallpaper.source.id", "lake"));
        }
        else
        {
            phone.Update("scenes", "home", ("wallpaper.source.id", "lake"));
            Later();
            laptop.Update("scenes", "home", ("wallpaper", Generated()));
        }
        foreach (var device in laptopPushesFirst ? new[] { laptop, phone } : [phone, laptop]) await device.PushAllAsync();
        await laptop.PullAsync();
        await phone.PullAsync();
        var fresh = Device("tablet", "scenes");
        await fresh.PullAsync();

        var expected = keyPathIsLater
            ? """{"source":{"kind":"generated","prompt":"dunes","id":"lake"}}"""
            : """{"source":{"kind":"generated","prompt":"dunes"}}""";
        foreach (var device in new[] { laptop, phone, fresh })
        {
            var row = device.Row("scenes", "home")!;
            Assert.Equal(DeployedClient.Canonical(JsonNode.Parse(expected)), DeployedClient.Canonical(row["wallpaper"]));
            Assert.DoesNotContain(row, member => member.Key.Contains('.'));
        }
        Assert.Equal(laptop.Rows("scenes"), fresh.Rows("scenes"));
        Assert.Equal(phone.Rows("scenes"), fresh.Rows("scenes"));
    }

    [Fact]
    public async Task A_key_path_write_reaches_a_new_device_folded_into_its_object()
    {
        var laptop = Device("laptop", "scenes");
        laptop.Create("scenes", new JsonObject { ["id"] = "home", ["wallpaper"] = Predefined() });
        await laptop.PushAllAsync();
        Later();
        laptop.Update("scenes", "home", ("wallpaper.source.id", "lake"), ("wallpaper.blur", 0));
        await laptop.PushAllAsync();

        var fresh = Device("tablet", "scenes");
        await fresh.PullAsync();

        var row = fresh.Row("scenes", "home")!;
        Assert.Equal("""{"blur":0,"source":{"id":"lake","kind":"predefined"}}""", DeployedClient.Canonical(row["wallpaper"]));
        Assert.DoesNotContain(row, member => member.Key.Contains('.'));
    }

    /// <summary>
    /// One device moves a record to the trash while another edits it. Both writes count: every device,
    /// and a device syncing afterwards for the first time, holds the edited record, in the trash.
    /// </summary>
    [Theory]
    [InlineData(true, true)]
    [InlineData(true, false)]
    [InlineData(false, true)]
    [InlineData(false, false)]
    public async Task A_soft_delete_racing_an_edit_ends_equal_on_every_device(bool editIsLater, bool deleterPushesFirst)
    {
        var deleter = Device("laptop", "places");
        var editor = Device("phone", "places");
        deleter.Create("places", new JsonObject { ["id"] = "p1", ["name"] = "Café", ["rating"] = 3, ["updatedAt"] = DeployedClient.Iso(_time.GetUtcNow()) });
        await deleter.PushAllAsync();
        await editor.PullAsync();
        Later();

        var deletedAt = "";
        void SoftDelete()
        {
            deletedAt = DeployedClient.Iso(_time.GetUtcNow());
            deleter.Update("places", "p1", ("deletedAt", deletedAt), ("updatedAt", deletedAt));
        }
        void Edit() => editor.Update("places", "p1", ("rating", 5), ("updatedAt", DeployedClient.Iso(_time.GetUtcNow())));
        if (editIsLater) { SoftDelete(); Later(); Edit(); }
        else { Edit(); Later(); SoftDelete(); }

        foreach (var device in deleterPushesFirst ? new[] { deleter, editor } : [editor, deleter]) await device.PushAllAsync();
        await deleter.PullAsync();
        await editor.PullAsync();
        var fresh = Device("tablet", "places");
        await fresh.PullAsync();

        foreach (var device in new[] { deleter, editor, fresh })
        {
            var row = device.Row("places", "p1");
            Assert.NotNull(row);
            Assert.Equal(deletedAt, row["deletedAt"]!.GetValue<string>());
            Assert.Equal(5, row["rating"]!.GetValue<int>());
        }
        Assert.Equal(deleter.Rows("places"), editor.Rows("places"));
        Assert.Equal(deleter.Rows("places"), fresh.Rows("places"));
    }

    [Fact]
    public async Task A_new_device_keeps_an_already_trashed_record_as_trashed()
    {
        var laptop = Device("laptop", "places");
        laptop.Create("places", new JsonObject { ["id"] = "p1", ["name"] = "Café" });
        await laptop.PushAllAsync();
        Later();
        var deletedAt = DeployedClient.Iso(_time.GetUtcNow());
        laptop.Update("places", "p1", ("deletedAt", deletedAt));
        await laptop.PushAllAsync();

        var fresh = Device("tablet", "places");
        await fresh.PullAsync();

        var row = fresh.Row("places", "p1");
        Assert.NotNull(row);
        Assert.Equal(deletedAt, row["deletedAt"]!.GetValue<string>());
        Assert.Equal("Café", row["name"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_record_deleted_and_created_again_reaches_a_device_without_the_old_records_fields()
    {
        var laptop = Device("laptop", "places");
        laptop.Create("places", new JsonObject { ["id"] = "p1", ["name"] = "Café", ["note"] = "closed on Mondays" });
        await laptop.PushAllAsync();
        var other = App.ClientFor("alice", "script");
        (await other.PushAsync("places", Changes.Batch(Changes.Delete("places", "p1")))).AssertStatus(HttpStatusCode.OK);
        (await other.PushAsync("places", Changes.Batch(Changes.Insert("places", "p1", new { id = "p1", name = "Bistro" }))))
            .AssertStatus(HttpStatusCode.OK);

        await laptop.PullAsync();
        var fresh = Device("tablet", "places");
        await fresh.PullAsync();

        Assert.Equal("""{"id":"p1","name":"Bistro"}""", DeployedClient.Canonical(laptop.Row("places", "p1")));
        Assert.Equal(fresh.Rows("places"), laptop.Rows("places"));
    }

    [Fact]
    public async Task A_restored_record_leaves_the_trash_on_every_device()
    {
        var laptop = Device("laptop", "places");
        var phone = Device("phone", "places");
        laptop.Create("places", new JsonObject { ["id"] = "p1", ["name"] = "Café" });
        await laptop.PushAllAsync();
        await phone.PullAsync();
        Later();
        laptop.Update("places", "p1", ("deletedAt", DeployedClient.Iso(_time.GetUtcNow())));
        await laptop.PushAllAsync();
        await phone.PullAsync();
        Later();

        laptop.Update("places", "p1", ("deletedAt", DeployedClient.Undefined));
        await laptop.PushAllAsync();
        await phone.PullAsync();

        Assert.Null(phone.Row("places", "p1")!["deletedAt"]);
    }
}
