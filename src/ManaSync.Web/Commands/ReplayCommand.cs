using System.Text.Json;
using JasperFx.CommandLine;
using ManaSync.Events;
using ManaSync.Web.Features.Backup;
using ManaSync.Web.Infrastructure;
using ManaSync.Web.Infrastructure.Isolation;

namespace ManaSync.Web.Commands;

public sealed class ReplayInput : NetCoreInput
{
    [Description("The user whose events to write")]
    public string UserFlag { get; set; } = "";

    [Description("Only this app's events")]
    public string? AppFlag { get; set; }

    [Description("Only events the server had received by this RFC 3339 time")]
    public string? UntilFlag { get; set; }

    [Description("Write to this file instead of standard output")]
    public string? OutFlag { get; set; }
}

/// <summary>
/// `replay --user alice [--app todo] [--until time] [--out file]`: the user's events, oldest first,
/// as JSON lines in the export's format, for auditors. Reads as that user, under row security.
/// </summary>
[Description("Write a user's events as JSON lines (oldest first), for auditors", Name = "replay")]
public sealed class ReplayCommand : JasperFxAsyncCommand<ReplayInput>
{
    public override async Task<bool> Execute(ReplayInput input)
    {
        if (input.UserFlag.Length == 0)
        {
            await Console.Error.WriteLineAsync("--user is required");
            return false;
        }
        DateTimeOffset? until = null;
        if (input.UntilFlag is not null)
        {
            if (!Timestamps.TryParse(input.UntilFlag, out var parsed))
            {
                await Console.Error.WriteLineAsync("--until must be an RFC 3339 time");
                return false;
            }
            until = parsed;
        }

        using var host = input.BuildHost();
        var sessions = host.Services.GetRequiredService<CallerSessions>();
        await using var output = input.OutFlag is null ? Console.OpenStandardOutput() : File.Create(input.OutFlag);
        long count = 0;
        await foreach (var change in UserEvents.ReadAsync(sessions, new Caller(input.UserFlag, []), new EventFilter(input.AppFlag, Until: until), CancellationToken.None))
        {
            await output.WriteAsync(JsonSerializer.SerializeToUtf8Bytes(BackupLine.From(change), WireJson.Options));
            await output.WriteAsync("\n"u8.ToArray());
            count++;
        }
        await Console.Error.WriteLineAsync($"{count} events of {input.UserFlag}");
        return true;
    }
}
