using System.Net;
using System.Text.Json;
using ManaSync.Events;
using ManaSync.Events.Upcasting;
using ManaSync.Testing;
using ManaSync.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Xunit;
using static ManaSync.Testing.Changes;

namespace ManaSync.Tests.SchemaEvolution;

/// <summary>The worked example of docs/schema-evolution.md: version 2 renames todo/tasks' "title" to "name".</summary>
public sealed class RenamedTitleFixture : AppFixture
{
    protected override void ConfigureServices(IServiceCollection services) =>
        services.AddSingleton<IChangeUpcaster>(new RenameField(1, "todo", "tasks", "title", "name"));
}

[CollectionDefinition(Name)]
public sealed class RenamedTitleCollection : ICollectionFixture<RenamedTitleFixture>
{
    public const string Name = "renamed-title";
}

[Collection(RenamedTitleCollection.Name)]
public sealed class UpcastingTests(RenamedTitleFixture app) : IAsyncLifetime
{
    public Task InitializeAsync() => app.ResetAsync();
    public Task DisposeAsync() => Task.CompletedTask;

    private static object Versioned(int schemaVersion, params object[] changes) => new { schemaVersion, changes };

    [Fact]
    public async Task A_version_1_change_is_read_in_the_version_2_shape_while_the_event_keeps_what_was_sent()
    {
        (await app.ClientFor("alice").PushAsync("todo", Versioned(1, Insert("tasks", "t1", new { title = "old style" }))))
            .AssertStatus(HttpStatusCode.OK);

        var (pulled, _) = await app.ClientFor("alice", "v2-device").PullAllAsync("todo", "tasks");
        var stored = Assert.Single(await app.StoredEventsAsync());

        var data = Assert.Single(pulled)["data"]!.AsObject();
        Assert.Equal("old style", data["name"]!.GetValue<string>());
        Assert.False(data.ContainsKey("title"));
        Assert.Equal(1, stored.SchemaVersion);
        Assert.True(stored.Data!.Value.TryGetProperty("title", out _));
    }

    [Fact]
    public async Task Versions_1_and_2_write_the_same_field_and_last_write_wins_across_them()
    {
        (await app.ClientFor("alice", "old").PushAsync("todo", Versioned(1,
            Update("tasks", "t1", "title", "from v1", "2026-01-01T10:05:00.000Z")))).AssertStatus(HttpStatusCode.OK);
        (await app.ClientFor("alice", "new").PushAsync("todo", Versioned(2,
            Update("tasks", "t1", "name", "from v2", "2026-01-01T10:01:00.000Z")))).AssertStatus(HttpStatusCode.OK);

        var (pulled, _) = await app.ClientFor("alice", "reader").PullAllAsync("todo", "tasks");

        Assert.Equal("from v1", Assert.Single(pulled)["data"]!["name"]!.GetValue<string>());
    }

    [Fact]
    public async Task The_supported_maximum_is_raised_by_the_upcaster_and_no_further()
    {
        (await app.ClientFor("alice").PushAsync("todo", Versioned(2, Insert("tasks", "t2", new { name = "new" })))).AssertStatus(HttpStatusCode.OK);
        (await app.ClientFor("alice").PushAsync("todo", Versioned(3, Insert("tasks", "t3", new { name = "newer" }))))
            .AssertStatus(HttpStatusCode.BadRequest);
    }

    [Fact]
    public void The_chain_must_start_at_version_1_without_gaps()
    {
        var rename = new RenameField(1, "todo", "tasks", "title", "name");
        Assert.Equal(1, ChangeUpcasting.None.CurrentVersion);
        Assert.Equal(2, new ChangeUpcasting([rename]).CurrentVersion);
        Assert.Throws<InvalidOperationException>(() => new ChangeUpcasting([new RenameField(2, "todo", "tasks", "a", "b")]));
    }

    [Fact]
    public void Other_apps_and_tables_are_left_as_they_are()
    {
        var upcasting = new ChangeUpcasting([new RenameField(1, "todo", "tasks", "title", "name")]);
        var notes = new ChangeRecorded
        {
            EventId = Guid.NewGuid(), SchemaVersion = 1, UserId = "u", AppId = "todo", Table = "notes", RecordId = "n", Op = ChangeOp.Insert,
            Data = JsonSerializer.SerializeToElement(new { title = "kept" }), ReceivedAt = DateTimeOffset.UtcNow,
            FutureLimit = DateTimeOffset.UtcNow, CommitTx = 1, CommitIndex = 0, BatchIndex = 0,
        };

        var read = upcasting.ToCurrent(notes);

        Assert.Equal(2, read.SchemaVersion);
        Assert.True(read.Data!.Value.TryGetProperty("title", out _));
    }
}
