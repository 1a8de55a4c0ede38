using System.Collections.ObjectModel;
using System.Diagnostics;
using Alba;
using ManaSync.Testing;
using ManaSync.Web.Infrastructure.Tracing;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using OpenTelemetry.Trace;
using Xunit;

namespace ManaSync.Tests.Tracing;

/// <summary>
/// Two nodes (in-process hosts) sharing one database, with tracing on the standard way: an OTLP endpoint over HTTP, here a
/// receiver that keeps what it is sent. Node 1's tracer also hands every span to an in-memory list. A tracer listens to the
/// whole process, so the list holds both nodes' spans (told apart by their node tag) and other tests' (told apart by trace).
/// </summary>
public sealed class TracingFixture : IAsyncLifetime
{
    public IAlbaHost Node1 { get; private set; } = null!;
    public IAlbaHost Node2 { get; private set; } = null!;
    public SpanList Spans { get; } = new();
    public OtlpReceiver Receiver { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        var database = await TestCluster.CreateDatabaseAsync();
        Receiver = await OtlpReceiver.StartAsync();
        Node1 = await StartAsync(database, services => services.ConfigureOpenTelemetryTracerProvider(tracing => tracing.AddInMemoryExporter(Spans)));
        Node2 = await StartAsync(database, _ => { });
    }

    private async Task<IAlbaHost> StartAsync(string database, Action<IServiceCollection> configure) =>
        await AlbaHost.For<Program>(builder =>
        {
            builder.UseEnvironment(Environments.Development);
            builder.UseSetting("DATABASE_URL", database);
            builder.UseSetting("OTEL_EXPORTER_OTLP_ENDPOINT", Receiver.Url);
            builder.UseSetting("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf");
            builder.UseSetting("OTEL_SERVICE_NAME", "manasync-test");
            builder.ConfigureServices(configure);
        });

    public static string NodeOf(IAlbaHost host) => host.Services.GetRequiredService<TraceNode>().Id;

    /// <summary>The spans recorded so far.</summary>
    public List<Activity> Recorded() => Spans.Snapshot();

    public async Task DisposeAsync()
    {
        await Node1.DisposeAsync();
        await Node2.DisposeAsync();
        await Receiver.DisposeAsync();
    }
}

/// <summary>The in-memory exporter's list, safe to read while spans of every test in the process end and are added.</summary>
public sealed class SpanList : Collection<Activity>
{
    protected override void InsertItem(int index, Activity item)
    {
        lock (Items) base.InsertItem(index, item);
    }

    public List<Activity> Snapshot()
    {
        lock (Items) return [.. Items];
    }
}

[CollectionDefinition(Name)]
public sealed class TracingCollection : ICollectionFixture<TracingFixture>
{
    public const string Name = "tracing";
}
