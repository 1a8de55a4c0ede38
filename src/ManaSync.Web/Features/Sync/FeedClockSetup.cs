using Npgsql;

namespace ManaSync.Web.Features.Sync;

/// <summary>Creates the feed clock's marks and starts the native epoch before the server serves (<see cref="FeedClock"/>).</summary>
public sealed class FeedClockSetup(NpgsqlDataSource database) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken) => FeedClock.StartAsync(database, cancellationToken);

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
