using ManaSync.Web.Auth;
using ManaSync.Events.Upcasting;
using ManaSync.Web.Infrastructure.Isolation;
using Wolverine.Http;

namespace ManaSync.Web.Features.Backup;

/// <summary>
/// GET /backup/export: every event the user made, tombstones included, as a .mana archive streamed
/// straight from the event store. Never billing-gated: people can always take their data with them.
/// </summary>
public static class ExportEndpoint
{
    [WolverineGet("/backup/export")]
    public static async Task Get(HttpContext http, CallerSessions sessions, ChangeUpcasting upcasting, TimeProvider time)
    {
        var userId = http.User.Id();
        var createdAt = time.GetUtcNow();
        http.Response.ContentType = "application/zip";
        http.Response.Headers.ContentDisposition = $"attachment; filename=\"{BackupArchive.FileName(userId, createdAt)}\"";
        await BackupArchive.WriteAsync(http.Response.Body, userId, createdAt,
            UserEvents.ReadAsync(sessions, new Caller(userId, []), EventFilter.All, http.RequestAborted),
            upcasting.CurrentVersion, http.RequestAborted);
    }
}
