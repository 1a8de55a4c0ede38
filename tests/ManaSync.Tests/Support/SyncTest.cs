using Xunit;

namespace ManaSync.Tests.Support;

/// <summary>A test of the shared sync host that starts from empty data.</summary>
[Collection(SyncCollection.Name)]
public abstract class SyncTest(AppFixture app) : IAsyncLifetime
{
    protected AppFixture App { get; } = app;

    public Task InitializeAsync() => App.ResetAsync();

    public Task DisposeAsync() => Task.CompletedTask;
}
