using System.Text.Json.Serialization;

namespace ManaSync.Web.Infrastructure;

/// <summary>
/// The JSON body of every error: a stable code for programs and a message for people
/// (PROTOCOL §11). Push validation errors also name the offending change.
/// </summary>
public sealed record ApiError(
    string Error,
    string Message,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] int? Index = null)
{
    public IResult ToResult(int statusCode) => Results.Json(this, WireJson.Options, statusCode: statusCode);

    public static IResult BadRequest(string message, int? index = null) =>
        new ApiError("bad_request", message, index).ToResult(StatusCodes.Status400BadRequest);

    public static IResult Unauthorized(string message) =>
        new ApiError("unauthorized", message).ToResult(StatusCodes.Status401Unauthorized);

    public static IResult Forbidden(string message) =>
        new ApiError("forbidden", message).ToResult(StatusCodes.Status403Forbidden);

    public static IResult PayloadTooLarge(string message) =>
        new ApiError("payload_too_large", message).ToResult(StatusCodes.Status413PayloadTooLarge);

    public static IResult Conflict(string message, int? index = null) =>
        new ApiError("conflict", message, index).ToResult(StatusCodes.Status409Conflict);
}
