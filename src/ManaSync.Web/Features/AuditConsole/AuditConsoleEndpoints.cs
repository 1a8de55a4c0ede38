using ManaSync.Web.Configuration;
using ManaSync.Web.Infrastructure;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.FileProviders;

namespace ManaSync.Web.Features.AuditConsole;

/// <summary>
/// GET /console: the audit console (PROTOCOL §12), a page and a script served from the assembly; it signs in with a
/// bearer token (or, in development, one from the dev issuer) and reads the /audit endpoints, so it can show nothing the
/// token could not read itself. Mapped as plain routes beside the Wolverine endpoints: they serve files, anonymously.
/// </summary>
public static class AuditConsoleEndpoints
{
    public const string Route = "/console";

    private static readonly EmbeddedFileProvider Assets = new(typeof(AuditConsoleEndpoints).Assembly, "ManaSync.Web.Features.AuditConsole.Assets");

    private static readonly Dictionary<string, string> ContentTypes = new()
    {
        [".html"] = "text/html; charset=utf-8",
        [".js"] = "text/javascript; charset=utf-8",
        [".css"] = "text/css; charset=utf-8",
    };

    public static void MapAuditConsole(this WebApplication app, ServerSettings settings)
    {
        app.MapGet(Route, (HttpContext http) => Serve(http, "index.html")).AllowAnonymous();
        // What the page needs to know of the server: whether it may offer development sign-in.
        app.MapGet(Route + "/config", () => Results.Json(new { devTokens = settings.IssuesDevTokens }, WireJson.Options)).AllowAnonymous();
        app.MapGet(Route + "/{file}", (string file, HttpContext http) => Serve(http, file)).AllowAnonymous();
        if (settings.IssuesDevTokens)
            app.Lifetime.ApplicationStarted.Register(() =>
            {
                var addresses = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses ?? [];
                foreach (var address in addresses) app.Logger.LogInformation("Audit console: {Url}{Route}", address.Replace("0.0.0.0", "localhost").Replace("[::]", "localhost"), Route);
            });
    }

    private static IResult Serve(HttpContext http, string name)
    {
        var file = Assets.GetFileInfo(name);
        if (!file.Exists || !ContentTypes.TryGetValue(Path.GetExtension(name), out var contentType))
            return new ApiError("not_found", "No such file.").ToResult(StatusCodes.Status404NotFound);
        var headers = http.Response.Headers;
        headers.CacheControl = "no-cache";
        // Only its own script and styles, talking only to this server; never framed.
        headers.ContentSecurityPolicy = "default-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";
        headers.XContentTypeOptions = "nosniff";
        return Results.Stream(file.CreateReadStream(), contentType);
    }
}
