using ManaSync.Bench;

// dotnet run -c Release --project bench -- <scenario>
var scenarios = new Dictionary<string, Func<Task>>
{
    ["fanout"] = FanOutScenario.RunAsync,
};

if (args.Length != 1 || !scenarios.TryGetValue(args[0], out var scenario))
{
    Console.Error.WriteLine($"usage: dotnet run -c Release --project bench -- <{string.Join('|', scenarios.Keys)}>");
    return 2;
}
Console.WriteLine($"# {args[0]} — {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC, {Environment.ProcessorCount} cores, " +
                  $"{GC.GetGCMemoryInfo().TotalAvailableMemoryBytes / (1L << 30)} GiB");
await scenario();
return 0;
