namespace ManaSync.Web.Infrastructure;

public static class ErrorHandling
{
    /// <summary>How long a client should wait before retrying a 503: about as long as a promoted standby takes to be noticed (HostSetup).</summary>
    public const string RetryAfterSeconds = "2";

    /// <summary>
    /// Every error answers with a JSON body (PROTOCOL §11): unexpected exceptions become a 500 without
    /// a stack trace, and bare status codes (404, 405, …) get a body too.
    /// </summary>
    public static void UseJsonErrors(this WebApplication app)
    {
        // Every 503 (database, membership or billing service unavailable) says when to come back.
        app.Use((context, next) =>
        {
            context.Response.OnStarting(() =>
            {
                if (context.Response.StatusCode == StatusCodes.Status503ServiceUnavailable)
                    context.Response.Headers.TryAdd("Retry-After", RetryAfterSeconds);
                return Task.CompletedTask;
            });
            return next(context);
        });
        app.UseExceptionHandler(handler => handler.Run(async context =>
        {
            var failure = context.Features.Get<Microsoft.AspNetCore.Diagnostics.IExceptionHandlerFeature>()?.Error;
            var result = failure switch
            {
                BadHttpRequestException { StatusCode: StatusCodes.Status413PayloadTooLarge } =>
                    ApiError.PayloadTooLarge("The body is too large."),
                BadHttpRequestException bad => new ApiError("bad_request", "The request could not be read.").ToResult(bad.StatusCode),
                // The database is unreachable or failing over: a 503 tells clients to retry later.
                _ when DatabaseUnavailable.Is(failure) =>
                    new ApiError("unavailable", "The database is unavailable; retry shortly.")
                        .ToResult(StatusCodes.Status503ServiceUnavailable),
                OperationCanceledException when context.RequestAborted.IsCancellationRequested =>
                    new ApiError("cancelled", "The request was cancelled.").ToResult(StatusCodes.Status499ClientClosedRequest),
                _ => new ApiError("internal", "The server failed to handle the request; it has been logged.")
                    .ToResult(StatusCodes.Status500InternalServerError),
            };
            await result.ExecuteAsync(context);
        }));
        app.UseStatusCodePages(async status =>
        {
            var code = status.HttpContext.Response.StatusCode;
            var (error, message) = code switch
            {
                StatusCodes.Status404NotFound => ("not_found", "No such endpoint."),
                StatusCodes.Status405MethodNotAllowed => ("method_not_allowed", "This endpoint does not accept that method."),
                _ => ("http_" + code, "The request failed."),
            };
            await new ApiError(error, message).ToResult(code).ExecuteAsync(status.HttpContext);
        });
    }
}
