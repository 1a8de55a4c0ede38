using ManaSync.Web.Infrastructure;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Mvc;
using Wolverine.Http;

namespace ManaSync.Web.Features.Rebuild;

/// <summary>GET /admin/projections/rebuild (service key): the rebuild's state and progress over every shard, from any node (PROTOCOL §12).</summary>
public static class RebuildStatusEndpoint
{
    [AllowAnonymous]
    [WolverineGet("/admin/projections/rebuild")]
    [ProducesResponseType<RebuildStatus>(StatusCodes.Status200OK)]
    [ProducesResponseType<ApiError>(StatusCodes.Status401Unauthorized)]
    public static async Task<IResult> Get(ViewRebuilder rebuilder, CancellationToken cancellation) =>
        Results.Json(await rebuilder.StatusAsync(cancellation), WireJson.Options);
}
