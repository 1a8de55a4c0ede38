using ManaSync.Events;
using ManaSync.Web.Infrastructure;
using System.Text.Json;
using ManaSync.Web.Infrastructure.Isolation;
using Marten;
using Npgsql;

namespace ManaSync.Web.Features.WritePath;

/// <summary>A shard's part of a write, as the transaction of the part that commits first records it.</summary>
/// <param name="Changes">The part's own changes: decided again where they live when it is stored.</param>
/// <param name="Arrivals">Events decided by the part that committed first that live in this part's shard too (records moved
/// into it): stored as they are.</param>
public sealed record PendingWrite(Guid Id, string Shard, Caller Writer, IReadOnlyList<IncomingChange> Changes,
    IReadOnlyList<ChangeRecorded>? Arrivals = null);

/// <summary>
/// The parts of a write across shards that the transaction committing first vouches for (<see cref="ShardedWrite"/>): once
/// that transaction commits, the other parts must be stored, even if the node dies before their own transactions
/// commit. They are recorded in that transaction, removed once every part has committed, and stored by
/// <see cref="PendingWritesSweeper"/> on any node when left behind: idempotently, since their changes carry eventIds
/// given before the first attempt.
/// </summary>
public static class PendingWrites
{
    private const string Schema = """
        create table if not exists manasync.pending_writes (
          id uuid primary key,
          shard text not null,
          user_id text not null,
          part jsonb not null,
          created_at timestamptz not null default now()
        );
        -- Requests may record their own writes' parts, and nothing else; the server's own role (the owner) reads and removes them.
        alter table manasync.pending_writes enable row level security;
        drop policy if exists caller_pending_writes on manasync.pending_writes;
        create policy caller_pending_writes on manasync.pending_writes using (false) with check (user_id = manasync.caller_user());
        grant insert on manasync.pending_writes to manasync_app;
        """;

    public static Task CreateAsync(NpgsqlDataSource shard, CancellationToken cancellation) =>
        SchemaScript.ApplyAsync(shard, "manasync.pending_writes", Schema, cancellation);

    /// <summary>Gives every change an eventId, so that storing it again is recognised as a retry.</summary>
    public static IReadOnlyList<IncomingChange> WithEventIds(IReadOnlyList<IncomingChange> changes) =>
        changes.Select(change => change.EventId is null ? change with { EventId = Guid.CreateVersion7(change.ReceivedAt) } : change).ToList();

    /// <summary>Records the other parts in the transaction of the part committing first.</summary>
    public static async Task RecordAsync(CallerSession<IDocumentSession> scope, IReadOnlyList<PendingWrite> later, CancellationToken cancellation)
    {
        if (later.Count == 0) return;
        var command = new NpgsqlBatchCommand(
            "insert into manasync.pending_writes (id, shard, user_id, part) select * from unnest($1::uuid[], $2::text[], $3::text[], $4::jsonb[])");
        command.Parameters.Add(new NpgsqlParameter { Value = later.Select(part => part.Id).ToArray() });
        command.Parameters.Add(new NpgsqlParameter { Value = later.Select(part => part.Shard).ToArray() });
        command.Parameters.Add(new NpgsqlParameter { Value = later.Select(part => part.Writer.UserId).ToArray() });
        command.Parameters.Add(new NpgsqlParameter { Value = later.Select(part => JsonSerializer.Serialize(part)).ToArray(), DataTypeName = "jsonb[]" });
        await using var reader = await scope.ExecuteAsync([command], cancellation);
    }

    /// <summary>Removes parts whose own transactions have committed (on the shard of the part committed first, as the server's own role).</summary>
    public static async Task ForgetAsync(NpgsqlDataSource firstShard, IEnumerable<Guid> ids, CancellationToken cancellation)
    {
        await using var command = firstShard.CreateCommand("delete from manasync.pending_writes where id = any($1)");
        command.Parameters.Add(new NpgsqlParameter { Value = ids.ToArray() });
        await command.ExecuteNonQueryAsync(cancellation);
    }

    /// <summary>How old a recorded part must be before a sweeper takes it: its own write has long ended by then.</summary>
    public static readonly TimeSpan Abandoned = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Stores one abandoned part recorded in this shard, if any, and removes it: under a row lock, so nodes sweeping at
    /// once take different parts. Returns whether there was one.
    /// </summary>
    public static async Task<bool> SweepOneAsync(NpgsqlDataSource shard, Func<PendingWrite, CancellationToken, Task<WriteOutcome>> store,
        ILogger logger, CancellationToken cancellation)
    {
        await using var connection = await shard.OpenConnectionAsync(cancellation);
        await using var transaction = await connection.BeginTransactionAsync(cancellation);
        PendingWrite? part;
        await using (var take = new NpgsqlCommand(
                         "select part from manasync.pending_writes where created_at < now() - $1 order by created_at limit 1 for update skip locked",
                         connection, transaction))
        {
            take.Parameters.Add(new NpgsqlParameter { Value = Abandoned });
            part = await take.ExecuteScalarAsync(cancellation) is string json ? JsonSerializer.Deserialize<PendingWrite>(json) : null;
        }
        if (part is null) return false;

        var outcome = await store(part, cancellation);
        if (outcome.Refusal is { } refusal)
            logger.LogError("A pending part {Id} of {User}'s write to shard {Shard} was refused and is dropped: {Reason}",
                part.Id, part.Writer.UserId, part.Shard, refusal.Message);
        else
            logger.LogWarning("Stored a pending part {Id} of {User}'s write to shard {Shard} left by a node that stopped: {Stored} stored, {Skipped} already there",
                part.Id, part.Writer.UserId, part.Shard, outcome.Stored, outcome.Skipped);
        await using (var forget = new NpgsqlCommand("delete from manasync.pending_writes where id = $1", connection, transaction))
        {
            forget.Parameters.Add(new NpgsqlParameter { Value = part.Id });
            await forget.ExecuteNonQueryAsync(cancellation);
        }
        await transaction.CommitAsync(cancellation);
        return true;
    }
}
