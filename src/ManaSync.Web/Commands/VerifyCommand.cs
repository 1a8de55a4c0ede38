using JasperFx.CommandLine;
using ManaSync.Web.Features.Backup;

namespace ManaSync.Web.Commands;

public sealed class VerifyInput
{
    [Description("The .mana archive to check")]
    public string File { get; set; } = "";
}

/// <summary>`verify file.mana`: checks an archive's structure, hash and every event, without a database.</summary>
[Description("Check a .mana archive's structure, hash and events", Name = "verify")]
public sealed class VerifyCommand : JasperFxAsyncCommand<VerifyInput>
{
    public override async Task<bool> Execute(VerifyInput input)
    {
        await using var archive = System.IO.File.OpenRead(input.File);
        var (manifest, fault) = await BackupReader.VerifyAsync(archive, CancellationToken.None);
        if (fault is not null)
        {
            await Console.Error.WriteLineAsync($"{input.File}: {fault}");
            return false;
        }
        Console.WriteLine($"{input.File}: ok — {manifest!.EventCount} events of {manifest.UserId}, apps {string.Join(", ", manifest.Apps)}, " +
                          $"sha256 {manifest.EventsSha256}");
        return true;
    }
}
