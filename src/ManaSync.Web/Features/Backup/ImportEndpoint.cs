using ManaSync.Events.Upcasting;
using ManaSync.Web.Configuration;
using ManaSync.Web.Features.WritePath;
using ManaSync.Web.Infrastructure;
using ManaSync.Web.Infrastructure.Isolation;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Mvc;
using Wolverine.Http;

namespace ManaSync.Web.Features.Backup;

public sealed record ImportResult(int Imported, int Skipped);

/// <summary>
/// POST /backup/import: replays a .mana archive of the caller's own into their account. The whole
/// archive is checked first (structure, hash, every line, the owner); a bad one stores nothing.
/// </summary>
public static class ImportEndpoint
{
    /// <summary>Archives can be far larger than a push; they are spooled to a temporary file, not held in memory.</summary>
    public const long MaxArchiveBytes = 1L << 30;

    /// <summary>Lines stored per round of locks, reads and appends: what one import holds in memory.</summary>
    private const int ChunkSize = 500;

    [WolverinePost("/backup/import")]
    [ProducesResponseType<ImportResult>(StatusCodes.Status200OK)]
    [ProducesResponseType<ApiError>(StatusCodes.Status400BadRequest)]
    [ProducesResponseType<ApiError>(StatusCodes.Status403Forbidden)]
    [ProducesResponseType<ApiError>(StatusCodes.Status409Conflict)]
    [ProducesResponseType<ApiError>(StatusCodes.Status503ServiceUnavailable)]
    public static async Task<IResult> Post([NotBody] Caller caller, HttpContext http, CallerSessions sessions, ChangeUpcasting upcasting,
        ServerSettings settings, TimeProvider time)
    {
        var cancellation = http.RequestAborted;
        if (http.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit) limit.MaxRequestBodySize = MaxArchiveBytes;

        await using var archive = new FileStream(Path.GetTempFileName(), FileMode.Create, FileAccess.ReadWrite, FileShare.None,
            64 * 1024, FileOptions.DeleteOnClose | FileOptions.Asynchronous);
        await http.Request.Body.CopyToAsync(archive, cancellation);
        if (archive.Length > MaxArchiveBytes)
            return ApiError.PayloadTooLarge($"Archives are limited to {MaxArchiveBytes} bytes.");

        var (manifest, fault) = await BackupReader.VerifyAsync(archive, cancellation);
        if (fault is not null) return ApiError.BadRequest(fault);
        if (manifest!.SchemaVersion > upcasting.CurrentVersion)
            return ApiError.BadRequest($"The archive was written at schema version {manifest.SchemaVersion}; " +
                                      $"this server reads up to {upcasting.CurrentVersion}.");
        if (manifest.UserId != caller.UserId)
            return new ApiError("forbidden", "This archive belongs to another user.").ToResult(StatusCodes.Status403Forbidden);

        var outcome = await ShardedWrite.StoreChunksAsync(sessions, caller,
            () => BackupReader.LinesAsync(archive, manifest, cancellation).Select(line => line.ToIncoming(caller.UserId)).Chunk(ChunkSize),
            shard => new WriteRequest(cancel => sessions.WriteAsync(caller, cancel, shard), _ => caller, upcasting, settings.MaxClockSkew, time),
            cancellation);
        if (outcome.Refusal is { } refusal) return refusal.ToResult();
        Metrics.SyncMetrics.Imported(outcome.Stored);
        return Results.Json(new ImportResult(outcome.Stored, outcome.Skipped), WireJson.Options);
    }
}
