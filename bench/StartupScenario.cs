using System.Diagnostics;
using ManaSync.Testing;

namespace ManaSync.Bench;

/// <summary>
/// Time from starting the built server (`dotnet ManaSync.Web.dll`) to its first 200 from /health, in
/// Development and Production, on a database whose schema is already in place (a restart).
/// </summary>
public static class StartupScenario
{
    private const int Runs = 3;

    public static async Task RunAsync()
    {
        var database = await TestCluster.CreateDatabaseAsync();
        await using var jwks = await JwksServer.StartAsync();
        jwks.AddKey("startup");
        // First start creates the schema; it is not counted.
        await (await ServerProcess.StartAsync(database)).DisposeAsync();

        Console.WriteLine();
        Console.WriteLine("| environment | first healthy response (median of 3) | min | max |");
        Console.WriteLine("|---|---|---|---|");
        foreach (var (environment, settings) in new[]
                 {
                     ("Development", new Dictionary<string, string>()),
                     ("Production", new Dictionary<string, string> { ["ASPNETCORE_ENVIRONMENT"] = "Production", ["JWKS_URL"] = jwks.Url }),
                 })
        {
            var seconds = new List<double>();
            for (var run = 0; run < Runs; run++)
            {
                var watch = Stopwatch.StartNew();
                await using var server = await ServerProcess.StartAsync(database, settings);
                seconds.Add(watch.Elapsed.TotalSeconds);
            }
            Console.WriteLine($"| {environment} | {Stats.Percentile(seconds, 50):F1} s | {seconds.Min():F1} s | {seconds.Max():F1} s |");
        }
    }
}
