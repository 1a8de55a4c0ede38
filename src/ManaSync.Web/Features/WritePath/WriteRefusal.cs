using ManaSync.Web.Infrastructure;

namespace ManaSync.Web.Features.WritePath;

/// <summary>
/// Why a write stored nothing, answered alike by every endpoint that stores changes. A client retries a 503 and
/// treats a 403 or 409 as final, so each is used only where retrying cannot help or can.
/// </summary>
/// <param name="Index">The change at fault: its place among the changes of the request.</param>
public sealed record WriteRefusal(int Status, string Error, string Message, int? Index)
{
    public static WriteRefusal Clash(int index) =>
        new(StatusCodes.Status409Conflict, "conflict", $"changes[{index}]: its eventId is already stored with a different payload.", index);

    /// <summary>Still taken after a rerun that saw every event the writer may see: another user's, which row security hides.</summary>
    public static WriteRefusal TakenByAnotherUser() =>
        new(StatusCodes.Status409Conflict, "conflict", "An eventId of these changes is already used by another change.", null);

    public static WriteRefusal NotAMember(int index, string spaceId) =>
        new(StatusCodes.Status403Forbidden, "forbidden", $"changes[{index}]: not a member of space '{spaceId}'.", index);

    public static WriteRefusal MembershipsUnknown(int index) =>
        new(StatusCodes.Status503ServiceUnavailable, "membership_unavailable",
            $"changes[{index}]: space memberships cannot be checked right now; retry shortly.", index);

    /// <summary>The same refusal for a change numbered differently: its place in the request rather than in a part of it.</summary>
    public WriteRefusal Renumbered(Func<int, int> original) =>
        Index is { } index ? this with { Index = original(index), Message = Message.Replace($"changes[{index}]", $"changes[{original(index)}]") } : this;

    public IResult ToResult() => new ApiError(Error, Message, Index).ToResult(Status);
}
