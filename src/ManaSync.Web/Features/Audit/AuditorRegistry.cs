using ManaSync.Web.Features.Sync;
using ManaSync.Web.Infrastructure;
using ManaSync.Web.Infrastructure.Sharding;
using Npgsql;

namespace ManaSync.Web.Features.Audit;

/// <summary>
/// Auditors as PostgreSQL knows them, and what they read. An auditor is registered (in every shard, by the server's own
/// role) when their token first reads another user's data: row security shows an auditor's reads nothing until then,
/// so a request path that forgot to check the token would still read nothing. Each such read is recorded (main).
/// </summary>
public sealed class AuditorRegistry(ShardDatabases databases)
{
    /// <summary>Registers the auditor in every shard (idempotent).</summary>
    public Task RegisterAsync(string auditor, CancellationToken cancellation) => WriteAsync(auditor, null, cancellation);

    /// <summary>Registers the auditor, and records that they read this user's data at this path.</summary>
    public Task RecordReadAsync(string auditor, string userId, string path, TimeProvider time, CancellationToken cancellation) =>
        WriteAsync(auditor, SessionBatch.CommandWith($"insert into {Schema}.audit_access (auditor, user_id, path, at) values ($1, $2, $3, $4)",
            auditor, userId, path, time.GetUtcNow()), cancellation);

    /// <param name="onMain">Written on main with the registration there.</param>
    private async Task WriteAsync(string auditor, NpgsqlBatchCommand? onMain, CancellationToken cancellation)
    {
        foreach (var (shard, database) in databases.All)
        {
            // Registered on every read, not once per process: a row removed meanwhile is back before the read needs it.
            await using var batch = database.CreateBatch();
            batch.BatchCommands.Add(SessionBatch.CommandWith($"insert into {Schema}.auditors (user_id) values ($1) on conflict do nothing", auditor));
            if (shard.Name == databases.Shards.Main.Name && onMain is not null) batch.BatchCommands.Add(onMain);
            await batch.ExecuteNonQueryAsync(cancellation);
        }
    }

    private const string Schema = MartenSetup.Schema;
}
