using JasperFx;
using ManaSync.Web.Auth;
using ManaSync.Web.Configuration;
using ManaSync.Web.Features.Dev;
using ManaSync.Web.Infrastructure;
using Marten;
using Wolverine;
using Wolverine.Http;
using Wolverine.Marten;

var builder = WebApplication.CreateBuilder(args);
ServerSettings settings;
DatabaseSetup database;
try
{
    settings = ServerSettings.From(builder.Configuration, builder.Environment);
    database = await DatabaseSetup.ResolveAsync(settings);
}
catch (Exception e) when (e is InvalidSettingException or EmbeddedPostgresException)
{
    Console.Error.WriteLine(e.Message);
    return 2;
}

await using var _ = database;

builder.WebHost.ConfigureKestrel(kestrel =>
{
    kestrel.ListenAnyIP(settings.Port);
    kestrel.Limits.MaxRequestBodySize = RequestBody.MaxBytes + 1;
});
builder.Services.AddSingleton(settings);
builder.Services.AddSingleton(TimeProvider.System);
builder.Services.AddSingleton<LiveConnections>();
if (settings.IssuesDevTokens) builder.Services.AddSingleton<DevIssuer>();
builder.Services.AddManaSyncAuthentication(settings);
builder.Services.AddMarten(options => options.ConfigureManaSync(database.ConnectionString))
    .IntegrateWithWolverine()
    .ApplyAllDatabaseChangesOnStartup();
builder.Host.UseWolverine(options => options.ConfigureManaSync());
builder.Services.AddWolverineHttp();

var app = builder.Build();
app.UseJsonErrors();
app.UseAuthentication();
app.UseAuthorization();
app.MapWolverineEndpoints(options => options.RequireAuthorizeOnAll());
if (settings.IssuesDevTokens) app.MapDevTokenEndpoints();

return await app.RunJasperFxCommands(args);

/// <summary>Visible to the integration tests' host.</summary>
public partial class Program;
