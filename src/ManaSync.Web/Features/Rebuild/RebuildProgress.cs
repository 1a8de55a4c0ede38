using System.Text.Json;
using ManaSync.Web.Infrastructure;
using Npgsql;

namespace ManaSync.Web.Features.Rebuild;

public enum RebuildPhase
{
    /// <summary>No rebuild has run, or a dry run has ended (its new view discarded).</summary>
    Idle,

    /// <summary>Merging the event log into the new view.</summary>
    Building,

    /// <summary>The new view has caught up: comparing it with the live one and merging what pushes add meanwhile.</summary>
    Comparing,

    /// <summary>The new view has taken the live one's place.</summary>
    Switched,
}

/// <summary>A transaction that was running when a page was read, and the log position above which its events may lie.</summary>
/// <param name="Xid">Its id as its rows carry it (<c>xmin</c>, 32 bits).</param>
public sealed record PendingWriter(long Xid, long Floor);

/// <summary>
/// A database's rebuild as far as it has gone, kept in that database (<c>manasync.view_rebuild</c>, one row) and written
/// in the same transaction as the views it describes, so that a rebuild killed at any point resumes exactly.
/// </summary>
/// <param name="Error">Why the last run stopped, when an error stopped it (its phase stays where it was, to resume).</param>
/// <param name="Cursor">The log position (<c>seq_id</c>) every event up to which is merged, but those of <paramref name="Pending"/>.</param>
public sealed record RebuildProgress(RebuildPhase Phase, long Cursor, IReadOnlyList<PendingWriter> Pending, long EventsDone, long EventsTotal,
    long ChangedRecords, bool DryRun, string? Error, DateTimeOffset StartedAt, DateTimeOffset UpdatedAt)
{
    private const string TableSql = $"""
        create table if not exists {MartenSetup.Schema}.view_rebuild (
          id int primary key check (id = 1),
          progress jsonb not null
        );
        """;

    public static Task CreateAsync(NpgsqlDataSource database, CancellationToken cancellation) =>
        SchemaScript.ApplyAsync(database, "manasync.view_rebuild", TableSql, cancellation);

    public static RebuildProgress None => new(RebuildPhase.Idle, 0, [], 0, 0, 0, false, null, default, default);

    public static Task<RebuildProgress> StartAsync(NpgsqlDataSource database, bool dryRun, long total, CancellationToken cancellation) =>
        (None with { Phase = RebuildPhase.Building, DryRun = dryRun, EventsTotal = total, StartedAt = DateTimeOffset.UtcNow }).SaveAsync(database, cancellation);

    public static async Task<RebuildProgress> ReadAsync(NpgsqlDataSource database, CancellationToken cancellation)
    {
        await using var connection = await database.OpenConnectionAsync(cancellation);
        return await ReadAsync(connection, null, cancellation) ?? None;
    }

    /// <returns>null when no rebuild ever ran here.</returns>
    public static async Task<RebuildProgress?> ReadAsync(NpgsqlConnection connection, NpgsqlTransaction? transaction, CancellationToken cancellation)
    {
        await using (var exists = new NpgsqlCommand($"select to_regclass('{MartenSetup.Schema}.view_rebuild') is not null", connection, transaction))
            if (!(bool)(await exists.ExecuteScalarAsync(cancellation))!) return null;
        await using var read = new NpgsqlCommand($"select progress::text from {MartenSetup.Schema}.view_rebuild where id = 1", connection, transaction);
        return await read.ExecuteScalarAsync(cancellation) is string json ? JsonSerializer.Deserialize<RebuildProgress>(json, Json) : null;
    }

    public async Task<RebuildProgress> SaveAsync(NpgsqlDataSource database, CancellationToken cancellation)
    {
        await using var connection = await database.OpenConnectionAsync(cancellation);
        return await SaveAsync(connection, null, cancellation);
    }

    /// <summary>Writes this progress (in the transaction of the work it records), stamped with the time; returns what it wrote.</summary>
    public async Task<RebuildProgress> SaveAsync(NpgsqlConnection connection, NpgsqlTransaction? transaction, CancellationToken cancellation)
    {
        var next = this with { UpdatedAt = DateTimeOffset.UtcNow };
        await using var save = new NpgsqlCommand(
            $"insert into {MartenSetup.Schema}.view_rebuild (id, progress) values (1, $1::jsonb) on conflict (id) do update set progress = excluded.progress",
            connection, transaction) { Parameters = { new NpgsqlParameter { Value = JsonSerializer.Serialize(next, Json) } } };
        await save.ExecuteNonQueryAsync(cancellation);
        return next;
    }

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        Converters = { new System.Text.Json.Serialization.JsonStringEnumConverter() },
    };
}
