using ManaSync.Web.Infrastructure.Tracing;
using Microsoft.Extensions.Configuration;
using Xunit;

namespace ManaSync.Core.Tests.Infrastructure;

/// <summary>Tracing is on exactly when an OTLP endpoint is configured and the traces exporter is not "none".</summary>
public sealed class TracingSetupTests
{
    private static bool IsOn(params (string Key, string Value)[] settings) => TracingSetup.IsOn(
        new ConfigurationBuilder().AddInMemoryCollection(settings.Select(s => new KeyValuePair<string, string?>(s.Key, s.Value))).Build());

    [Fact]
    public void Off_by_default_and_with_an_empty_endpoint() =>
        Assert.False(IsOn() || IsOn(("OTEL_EXPORTER_OTLP_ENDPOINT", "")) || IsOn(("OTEL_SERVICE_NAME", "manasync")));

    [Fact]
    public void On_with_an_endpoint_for_everything_or_for_traces() =>
        Assert.True(IsOn(("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317")) &&
                    IsOn(("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://collector:4318/v1/traces")));

    [Fact]
    public void Off_when_the_traces_exporter_is_none() =>
        Assert.False(IsOn(("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317"), ("OTEL_TRACES_EXPORTER", "none")));
}
