using System.Diagnostics;
using JasperFx.CommandLine;
using ManaSync.Events.Upcasting;
using ManaSync.Web.Configuration;
using ManaSync.Web.Features.Migration;
using ManaSync.Web.Features.Sync;
using ManaSync.Web.Infrastructure;
using ManaSync.Web.Infrastructure.Sharding;
using ManaSync.Web.Infrastructure.Isolation;
using Marten;
using Npgsql;

namespace ManaSync.Web.Commands;

public sealed class MigrateFromGoInput : NetCoreInput
{
    [Description("Connection string (URL or keywords) of the Go service's database, read-only")]
    public string SourceFlag { get; set; } = "";

    [Description("Rows stored per transaction (default 1000)")]
    public int ChunkFlag { get; set; } = 1000;
}

/// <summary>
/// `migrate-from-go --source &lt;connection string&gt;`: stores every change of the Go service as an event
/// (PROTOCOL §13), idempotently: run it again, or after more rows arrived, and nothing is stored twice.
/// </summary>
[Description("Store the Go mana-sync service's changes as events (idempotent)", Name = "migrate-from-go")]
public sealed class MigrateFromGoCommand : JasperFxAsyncCommand<MigrateFromGoInput>
{
    public override async Task<bool> Execute(MigrateFromGoInput input)
    {
        if (input.SourceFlag.Length == 0 || input.ChunkFlag < 1)
        {
            await Console.Error.WriteLineAsync("--source is required, and --chunk must be at least 1");
            return false;
        }
        using var host = input.BuildHost();
        var services = host.Services;
        if (services.GetRequiredService<ShardSet>().IsSharded)
        {
            // Migrated changes are positioned by their transaction and marked with their Go receive times (FeedClock), which
            // only an unsharded database does; a migrated deployment adds shards after and moves scopes to them.
            await Console.Error.WriteLineAsync("migrate-from-go runs before SHARDS is set: unset SHARDS, migrate into main, then add shards " +
                                               "and move scopes to them (docs/deployment.md, \"Shards\").");
            return false;
        }
        var cancellation = CancellationToken.None;
        GoSource source;
        try
        {
            source = await GoSource.OpenAsync(DatabaseUrl.ToConnectionString(input.SourceFlag), cancellation);
        }
        catch (Exception e) when (e is NpgsqlException or InvalidOperationException or FormatException or ArgumentException)
        {
            await Console.Error.WriteLineAsync($"migrate-from-go: cannot read the source: {e.Message}");
            return false;
        }

        await using (source)
        {
            var store = services.GetRequiredService<IDocumentStore>();
            var database = services.GetRequiredService<NpgsqlDataSource>();
            await store.Storage.ApplyAllConfiguredChangesToDatabaseAsync();
            await RowSecurity.ApplyAsync(database, cancellation);
            await FeedClock.CreateAsync(database, cancellation);

            var (total, sourceNow) = await source.SurveyAsync(cancellation);
            var migration = new GoMigration(store, database, services.GetRequiredService<ChangeUpcasting>(),
                services.GetRequiredService<ServerSettings>().MaxClockSkew, await source.SpacesOfUsersAsync(cancellation));
            await Console.Error.WriteLineAsync($"migrate-from-go: {total:N0} rows in the source");

            var clock = Stopwatch.StartNew();
            var (read, stored, skipped, refused) = (0L, 0L, 0L, 0L);
            var (users, apps) = (new HashSet<string>(), new HashSet<string>());
            var chunk = new List<GoRow>(input.ChunkFlag);
            await using var rows = source.RowsAsync(cancellation).GetAsyncEnumerator(cancellation);
            var more = await rows.MoveNextAsync();
            while (more)
            {
                chunk.Add(rows.Current);
                users.Add(rows.Current.UserId);
                apps.Add(rows.Current.AppId);
                more = await rows.MoveNextAsync();
                if (chunk.Count < input.ChunkFlag && more) continue;

                // The last chunk is marked with the source's clock: rows the Go service received until then are all here.
                var receivedUpTo = more ? chunk.Max(row => row.CreatedAt) : Max(chunk.Max(row => row.CreatedAt), sourceNow);
                var result = await migration.StoreAsync(chunk, receivedUpTo, cancellation);
                (read, stored, skipped, refused) = (read + chunk.Count, stored + result.Stored, skipped + result.Skipped, refused + result.Refused);
                chunk.Clear();
                await Console.Error.WriteLineAsync(
                    $"migrate-from-go: {read:N0} of {Math.Max(total, read):N0} rows ({100.0 * read / Math.Max(1, Math.Max(total, read)):F0} %), " +
                    $"{read / Math.Max(clock.Elapsed.TotalSeconds, 0.001):N0} rows/s");
            }

            Console.WriteLine($"migrate-from-go: {read:N0} rows read, {stored:N0} stored, {skipped:N0} already stored; " +
                              $"{users.Count:N0} users, {apps.Count:N0} apps; {clock.Elapsed.TotalSeconds:F1} s");
            if (refused > 0)
                Console.WriteLine($"migrate-from-go: {refused:N0} rows not stored: their app id is not one ManaSync serves ({AppId.Rule})");
            return refused == 0;
        }
    }

    private static DateTimeOffset Max(DateTimeOffset a, DateTimeOffset b) => a > b ? a : b;
}
