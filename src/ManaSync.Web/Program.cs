using JasperFx;
using ManaSync.Web.Commands;
using ManaSync.Web.Configuration;
using ManaSync.Web.Infrastructure;

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
if (AdminCommandLine.NeedsRowSecurityBypass(args) &&
    await AdminCommandLine.RowSecurityBypassRefusalAsync(database.ConnectionString, string.Join(' ', args.Take(2))) is { } refusal)
{
    Console.Error.WriteLine(refusal);
    return 2;
}

builder.AddManaSync(settings, database.Shards);
var app = builder.Build();
app.UseManaSync(settings);
return await app.RunJasperFxCommands(args);

/// <summary>Visible to the integration tests' host.</summary>
public partial class Program;
