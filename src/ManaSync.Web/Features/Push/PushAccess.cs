using ManaSync.Projections.Records;
using ManaSync.Web.Infrastructure;
using ManaSync.Web.Infrastructure.Isolation;

namespace ManaSync.Web.Features.Push;

/// <summary>Writes into a shared space need membership of it; personal writes need nothing more.</summary>
public static class PushAccess
{
    /// <returns>The refusal (403, or 503 when membership cannot be determined), or null when the batch may be stored.</returns>
    public static IResult? Check(PushBatch batch, Caller caller, bool spacesKnown)
    {
        foreach (var change in batch.Changes.Where(change => RecordKey.IsShared(change.SpaceId, caller.UserId)))
        {
            if (!spacesKnown)
                return new ApiError("membership_unavailable",
                        "Space memberships cannot be checked right now; retry shortly.", change.Index)
                    .ToResult(StatusCodes.Status503ServiceUnavailable);
            if (!caller.IsMemberOf(change.SpaceId!))
                return new ApiError("forbidden", $"changes[{change.Index}]: not a member of space '{change.SpaceId}'.", change.Index)
                    .ToResult(StatusCodes.Status403Forbidden);
        }
        return null;
    }
}
