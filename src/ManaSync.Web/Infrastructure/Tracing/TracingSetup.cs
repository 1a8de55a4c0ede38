using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace ManaSync.Web.Infrastructure.Tracing;

/// <summary>
/// OpenTelemetry tracing, configured the standard way (<c>OTEL_EXPORTER_OTLP_ENDPOINT</c>, <c>OTEL_EXPORTER_OTLP_PROTOCOL</c>,
/// <c>OTEL_SERVICE_NAME</c>, <c>OTEL_TRACES_SAMPLER</c>…, from the environment or any configuration source): on when an
/// OTLP endpoint is set, unless <c>OTEL_TRACES_EXPORTER=none</c>. Off, nothing is registered at all, so no listener makes
/// any library record a span.
/// </summary>
public static class TracingSetup
{
    /// <summary>Spans of the stack's own sources: Wolverine's handlers and messages, Marten's sessions, Npgsql's commands.</summary>
    public static readonly string[] StackSources = ["Wolverine", "Marten", "Npgsql"];

    public static bool IsOn(IConfiguration configuration) =>
        configuration["OTEL_TRACES_EXPORTER"]?.Trim() != "none" &&
        (configuration["OTEL_EXPORTER_OTLP_ENDPOINT"] is { Length: > 0 } || configuration["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] is { Length: > 0 });

    public static void AddManaSyncTracing(this WebApplicationBuilder builder, TraceNode node)
    {
        var configuration = builder.Configuration;
        if (!IsOn(configuration)) return;
        builder.Services.AddOpenTelemetry()
            .ConfigureResource(resource => resource.AddService(configuration["OTEL_SERVICE_NAME"] ?? "manasync", serviceInstanceId: node.Id))
            .WithTracing(tracing => tracing
                // Probes and scrapes every few seconds would bury the requests that matter.
                .AddAspNetCoreInstrumentation(aspNetCore => aspNetCore.Filter = http =>
                    !http.Request.Path.StartsWithSegments("/metrics") && !http.Request.Path.StartsWithSegments("/health"))
                .AddHttpClientInstrumentation()
                .AddSource(StackSources)
                .AddSource(SyncTracing.SourceName)
                .AddOtlpExporter());
    }
}
