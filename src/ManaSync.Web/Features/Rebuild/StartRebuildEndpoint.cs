using ManaSync.Web.Infrastructure;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Mvc;
using Wolverine.Http;

namespace ManaSync.Web.Features.Rebuild;

/// <summary>
/// POST /admin/projections/rebuild[?dryRun=true] (service key): starts a zero-downtime rebuild of the record view on
/// this node → 202 with its status; 409 while one runs anywhere (PROTOCOL §12). A dry run compares and reports how many
/// records would change, without switching.
/// </summary>
public static class StartRebuildEndpoint
{
    [AllowAnonymous]
    [WolverinePost("/admin/projections/rebuild")]
    [ProducesResponseType<RebuildStatus>(StatusCodes.Status202Accepted)]
    [ProducesResponseType<ApiError>(StatusCodes.Status401Unauthorized)]
    [ProducesResponseType<ApiError>(StatusCodes.Status409Conflict)]
    public static async Task<IResult> Post(ViewRebuilder rebuilder, bool? dryRun, CancellationToken cancellation)
    {
        if (!await rebuilder.TryStartAsync(dryRun == true, cancellation))
            return ApiError.Conflict("A rebuild of the record view is running already; GET this address for its progress.");
        return Results.Json(await rebuilder.StatusAsync(cancellation), WireJson.Options, statusCode: StatusCodes.Status202Accepted);
    }
}
