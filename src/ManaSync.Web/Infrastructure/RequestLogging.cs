namespace ManaSync.Web.Infrastructure;

public static class RequestLogging
{
    /// <summary>
    /// Every log line written while a request runs carries its request id and user id (never the
    /// token, never record contents). Outside Development, logs are JSON lines with those scopes.
    /// </summary>
    public static void AddManaSyncLogging(this WebApplicationBuilder builder)
    {
        if (!builder.Environment.IsDevelopment())
            builder.Logging.AddJsonConsole(json => json.IncludeScopes = true);
    }

    /// <summary>Runs after authentication, so the user is known.</summary>
    public static void UseRequestLogScope(this WebApplication app)
    {
        var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("ManaSync.Request");
        app.Use(async (context, next) =>
        {
            using (logger.BeginScope(new Dictionary<string, object?>
                   {
                       ["RequestId"] = context.TraceIdentifier,
                       ["UserId"] = context.User.FindFirst(Auth.CurrentUser.SubjectClaim)?.Value,
                   }))
                await next(context);
        });
    }
}
