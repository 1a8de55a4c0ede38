using ManaSync.Testing;
using Xunit;

namespace ManaSync.Tests.Support;

/// <summary>
/// Tests that need a server process of their own (a real Kestrel port) on a fresh database: one that
/// is killed, or one whose database a test holds transactions open in.
/// </summary>
public abstract class OwnServerTest : IAsyncLifetime
{
    protected string Database { get; private set; } = null!;
    protected ServerProcess Server { get; set; } = null!;

    public async Task InitializeAsync()
    {
        Database = await TestCluster.CreateDatabaseAsync();
        Server = await ServerProcess.StartAsync(Database);
    }

    public async Task DisposeAsync() => await Server.DisposeAsync();
}
