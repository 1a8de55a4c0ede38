using ManaSync.Bench;

// dotnet run -c Release --project bench -- <scenario> [arguments]
var scenarios = new Dictionary<string, Func<string[], Task>>
{
    ["push"] = PushScenario.RunInsertsAsync,
    ["push-updates"] = PushScenario.RunUpdatesAsync,
    ["initial-sync"] = InitialSyncScenario.RunAsync,
    ["fanout"] = _ => FanOutScenario.RunAsync(),
    ["export"] = ExportScenario.RunAsync,
    ["soak"] = SoakScenario.RunAsync,
    ["startup"] = _ => StartupScenario.RunAsync(),
    ["replication"] = ReplicationScenario.RunAsync,
    ["shards"] = ShardsScenario.RunAsync,
    ["rebuild"] = RebuildScenario.RunAsync,
    ["audit"] = AuditScenario.RunAsync,
    ["tracing"] = TracingScenario.RunAsync,
    ["merge"] = MergeScenario.RunAsync,
};

if (args.Length == 0 || !scenarios.TryGetValue(args[0], out var scenario))
{
    Console.Error.WriteLine($"usage: dotnet run -c Release --project bench -- <{string.Join('|', scenarios.Keys)}> [arguments]");
    return 2;
}
Console.WriteLine($"# {args[0]} — {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC, {Environment.ProcessorCount} cores, " +
                  $"{GC.GetGCMemoryInfo().TotalAvailableMemoryBytes / (1L << 30)} GiB");
await scenario(args[1..]);
return 0;
