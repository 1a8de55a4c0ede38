using Npgsql;

namespace ManaSync.Web.Infrastructure.Isolation;

/// <summary>Applies <see cref="RowSecurity"/> at start-up; registered after Marten, whose hosted service creates the tables first.</summary>
public sealed class RowSecuritySetup(NpgsqlDataSource database) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken) => RowSecurity.ApplyAsync(database, cancellationToken);

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
