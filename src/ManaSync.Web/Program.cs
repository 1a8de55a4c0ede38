using JasperFx;
using ManaSync.Events.Upcasting;
using ManaSync.Web.Auth;
using ManaSync.Web.Commands;
using ManaSync.Web.Configuration;
using ManaSync.Web.Features.Dev;
using ManaSync.Web.Features.Live;
using ManaSync.Web.Features.Metrics;
using Prometheus;
using ManaSync.Web.Features.Tenancy;
using ManaSync.Web.Infrastructure;
using ManaSync.Web.Infrastructure.Isolation;
using Marten;
using Npgsql;
using Wolverine;
using Wolverine.Http;
using Wolverine.Marten;

args = AdminCommandLine.Normalize(args);
// `replay` writes its events to standard output: everything else (banners, logs) goes to standard error.
if (AdminCommandLine.WritesToStandardOutput(args)) Console.SetOut(Console.Error);
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

// Stops the embedded cluster (if any) when the host ends.
await using var databaseLifetime = database;
if (AdminCommandLine.IsRebuild(args) && await AdminCommandLine.RebuildRefusalAsync(database.ConnectionString) is { } refusal)
{
    Console.Error.WriteLine(refusal);
    return 2;
}

builder.WebHost.ConfigureKestrel(kestrel =>
{
    kestrel.ListenAnyIP(settings.Port);
    kestrel.Limits.MaxRequestBodySize = RequestBody.MaxBytes + 1;
});
builder.Services.AddSingleton(settings);
// On SIGTERM, in-flight pushes get up to 15 s to finish; live streams end at once (clients resume elsewhere).
builder.Services.Configure<HostOptions>(host => host.ShutdownTimeout = TimeSpan.FromSeconds(15));
builder.Services.AddSingleton(TimeProvider.System);
builder.Services.AddSingleton<LiveConnections>();
builder.Services.AddSingleton<LiveHub>();
builder.Services.AddSingleton<TokenValidator>();
builder.Services.AddSingleton<WebSocketSession.Services>();
builder.Services.AddSingleton(NpgsqlDataSource.Create(database.ConnectionString));
builder.Services.AddHostedService<ChangeListener>();
if (settings.IssuesDevTokens) builder.Services.AddSingleton<DevIssuer>();
builder.Services.AddManaSyncAuthentication(settings);
builder.Services.AddManaServices();
builder.Services.AddCors(cors => cors.AddDefaultPolicy(policy => policy
    .WithOrigins([.. settings.CorsOrigins])
    .WithMethods("GET", "POST", "OPTIONS")
    .WithHeaders("Authorization", "Content-Type", "X-Client-Id", "Last-Event-ID")
    .AllowCredentials()));
builder.Services.AddSingleton<ChangeUpcasting>();
builder.Services.AddSingleton<IConfigureMarten, RecordViewProjectionSetup>();
builder.Services.AddMarten(options => options.ConfigureManaSync(database.ConnectionString))
    .IntegrateWithWolverine()
    .ApplyAllDatabaseChangesOnStartup();
builder.Services.AddHostedService<RowSecuritySetup>();
builder.Services.AddSingleton<CallerSessions>();
builder.Host.UseWolverine(options => options.ConfigureManaSync());
builder.Services.AddWolverineHttp();

var app = builder.Build();
app.UseJsonErrors();
app.UseHttpMetrics();
app.UseCors();
app.UseWebSockets(new WebSocketOptions { KeepAliveInterval = TimeSpan.FromSeconds(30) });
app.UseAuthentication();
app.UseAuthorization();
app.MapWolverineEndpoints(options => options.RequireAuthorizeOnAll());
if (settings.IssuesDevTokens) app.MapDevTokenEndpoints();
app.MapMetrics().AllowAnonymous();
SyncMetrics.ReportLiveState(app.Services.GetRequiredService<LiveConnections>(), app.Services.GetRequiredService<LiveHub>());

return await app.RunJasperFxCommands(args);

/// <summary>Visible to the integration tests' host.</summary>
public partial class Program;
