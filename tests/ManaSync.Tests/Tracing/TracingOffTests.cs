using ManaSync.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using OpenTelemetry.Trace;
using Xunit;

namespace ManaSync.Tests.Tracing;

/// <summary>Without an OTLP endpoint nothing of OpenTelemetry is registered: no tracer, so no listener makes a library record a span.</summary>
[Collection(SyncCollection.Name)]
public sealed class TracingOffTests(AppFixture app)
{
    [Fact]
    public void A_server_without_an_endpoint_registers_no_tracer_and_no_telemetry_service()
    {
        Assert.Null(app.Host.Services.GetService<TracerProvider>());
        Assert.DoesNotContain(app.Host.Services.GetServices<IHostedService>(),
            service => service.GetType().Namespace?.StartsWith("OpenTelemetry", StringComparison.Ordinal) == true);
    }
}
