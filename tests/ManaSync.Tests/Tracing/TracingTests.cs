using System.Diagnostics;
using System.Net;
using System.Text;
using ManaSync.Testing;
using ManaSync.Tests.Support;
using ManaSync.Web.Infrastructure.Tracing;
using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry.Trace;
using Xunit;
using static ManaSync.Testing.Changes;

namespace ManaSync.Tests.Tracing;

/// <summary>One trace per push, across the node that stored it and the node that delivered it to a live stream.</summary>
[Collection(TracingCollection.Name)]
public sealed class TracingTests(TracingFixture tracing)
{
    [Fact]
    public async Task A_push_on_node_1_and_its_delivery_to_a_stream_on_node_2_are_one_trace()
    {
        var user = $"tracer-{Guid.NewGuid():N}";
        var secret = $"secret title {Guid.NewGuid():N}";
        var pushToken = AppFixture.TokenFor(tracing.Node1, user);
        var streamToken = AppFixture.TokenFor(tracing.Node2, user);
        await using var stream = await SseStream.OpenAsync(tracing.Node2.Server.CreateClient(), "/sync/todo/stream?collections=tasks", streamToken);
        Assert.Equal(HttpStatusCode.OK, stream.Response.StatusCode);

        var pushed = await new SyncClient(tracing.Node1.Server.CreateClient(), pushToken, "device-1")
            .PushAsync("todo", Batch(Insert("tasks", "t1", new { title = secret })));
        pushed.AssertStatus(HttpStatusCode.OK);
        Assert.Contains(secret, (await stream.NextAsync()).Data);

        var node2 = TracingFixture.NodeOf(tracing.Node2);
        var delivery = await EventuallyAsync(() => tracing.Recorded().FirstOrDefault(span =>
            span.OperationName == SyncTracing.Delivery && Tag(span, SyncTracing.NodeTag) == node2 && Tag(span, "manasync.transport") == "sse"));
        // The push's request span ends (and is recorded) only after its answer has reached the client: wait for it too.
        await EventuallyAsync(() => tracing.Recorded().FirstOrDefault(span =>
            span.TraceId == delivery.TraceId && span.Kind == ActivityKind.Server && span.ParentSpanId == default));
        var trace = tracing.Recorded().Where(span => span.TraceId == delivery.TraceId).ToList();
        var byId = trace.ToDictionary(span => span.SpanId);

        // push (node 1) → write → decide, commit; notice heard (node 2) → … → delivery (node 2), linked to the write.
        var request = Assert.Single(trace, span => span.Kind == ActivityKind.Server && span.ParentSpanId == default);
        Assert.Equal("POST", Tag(request, "http.request.method"));
        var write = Assert.Single(trace, span => span.OperationName == SyncTracing.Write);
        Assert.Contains(request, Ancestors(write, byId));
        Assert.Contains(trace, span => span.OperationName == SyncTracing.Decide && span.ParentSpanId == write.SpanId);
        Assert.Contains(trace, span => span.OperationName == SyncTracing.Commit && span.ParentSpanId == write.SpanId);
        Assert.Contains(write.Events, noted => noted.Name == SyncTracing.NoticeSent);
        Assert.Contains(trace, span => span.Source.Name == "Npgsql" && Ancestors(span, byId).Contains(write));
        var heard = Assert.Single(trace, span => span.OperationName == SyncTracing.NoticeHeard && Tag(span, SyncTracing.NodeTag) == node2);
        Assert.Equal(write.SpanId, heard.ParentSpanId);
        Assert.Contains(heard, Ancestors(delivery, byId));
        Assert.Contains(delivery.Links, link => link.Context.SpanId == write.SpanId);
        // Node 1 heard its own notice too, in the same trace.
        Assert.Contains(trace, span => span.OperationName == SyncTracing.NoticeHeard && Tag(span, SyncTracing.NodeTag) == TracingFixture.NodeOf(tracing.Node1));

        // Neither the token nor the record's contents are in any span, nor in what was sent to the collector.
        foreach (var span in trace)
        foreach (var (name, value) in span.TagObjects)
        {
            var text = value?.ToString() ?? "";
            Assert.False(text.Contains(secret) || text.Contains(pushToken) || text.Contains(streamToken), $"{span.OperationName} {name} = {text}");
        }
        Assert.True(tracing.Node1.Services.GetRequiredService<TracerProvider>().ForceFlush(10_000));
        var sent = tracing.Receiver.Received.Where(request => request.Path == "/v1/traces").ToList();
        Assert.NotEmpty(sent);
        Assert.All(sent, request => Assert.Equal("application/x-protobuf", request.ContentType));
        var traceId = Convert.FromHexString(delivery.TraceId.ToHexString());
        Assert.Contains(sent, request => request.Body.AsSpan().IndexOf(traceId) >= 0);
        foreach (var (_, _, body) in sent)
        foreach (var text in new[] { secret, pushToken, streamToken })
            Assert.True(body.AsSpan().IndexOf(Encoding.UTF8.GetBytes(text)) < 0);
    }

    [Fact]
    public async Task A_notice_to_a_websocket_on_node_2_is_delivered_in_the_pushs_trace()
    {
        var user = $"tracer-{Guid.NewGuid():N}";
        using var socket = await tracing.Node2.Server.CreateWebSocketClient().ConnectAsync(new Uri("ws://localhost/ws/todo"), CancellationToken.None);
        await socket.SendJsonAsync(new { type = "auth", token = AppFixture.TokenFor(tracing.Node2, user) });
        Assert.Equal("auth-ok", (await socket.ReceiveJsonAsync())!["type"]!.GetValue<string>());
        var pushed = await new SyncClient(tracing.Node1.Server.CreateClient(), AppFixture.TokenFor(tracing.Node1, user), "device-1")
            .PushAsync("todo", Batch(Insert("tasks", "t1", new { title = "x" })));
        pushed.AssertStatus(HttpStatusCode.OK);
        Assert.Equal("sync-available", (await socket.ReceiveJsonAsync())!["type"]!.GetValue<string>());

        var node2 = TracingFixture.NodeOf(tracing.Node2);
        var delivery = await EventuallyAsync(() => tracing.Recorded().FirstOrDefault(span =>
            span.OperationName == SyncTracing.Delivery && Tag(span, SyncTracing.NodeTag) == node2 && Tag(span, "manasync.transport") == "websocket"));
        var trace = tracing.Recorded().Where(span => span.TraceId == delivery.TraceId).ToList();
        var write = Assert.Single(trace, span => span.OperationName == SyncTracing.Write);
        Assert.Contains(delivery.Links, link => link.Context.SpanId == write.SpanId);
        Assert.Contains(Ancestors(delivery, trace.ToDictionary(span => span.SpanId)),
            span => span.OperationName == SyncTracing.NoticeHeard && Tag(span, SyncTracing.NodeTag) == node2);
    }

    [Fact]
    public async Task Query_string_values_are_redacted_in_request_spans()
    {
        var (app, table) = ($"app{Guid.NewGuid():N}", $"table{Guid.NewGuid():N}");
        (await new SyncClient(tracing.Node1.Server.CreateClient(), AppFixture.TokenFor(tracing.Node1, "tracer"), "device-1")
            .PullAsync(app, table)).AssertStatus(HttpStatusCode.OK);

        var pull = await EventuallyAsync(() => tracing.Recorded().FirstOrDefault(span =>
            span.Kind == ActivityKind.Server && Tag(span, "url.path") == $"/sync/{app}/pull"));
        Assert.Contains("collection=", Tag(pull, "url.query"));
        Assert.DoesNotContain(table, Tag(pull, "url.query"));
    }

    private static string? Tag(Activity span, string name) => span.GetTagItem(name)?.ToString();

    private static List<Activity> Ancestors(Activity span, IReadOnlyDictionary<ActivitySpanId, Activity> byId)
    {
        var ancestors = new List<Activity>();
        while (byId.TryGetValue(span.ParentSpanId, out var parent))
        {
            ancestors.Add(parent);
            span = parent;
        }
        return ancestors;
    }

    private static async Task<T> EventuallyAsync<T>(Func<T?> find) where T : class
    {
        for (var waited = 0; waited < 100; waited++)
        {
            if (find() is { } found) return found;
            await Task.Delay(100);
        }
        throw new Xunit.Sdk.XunitException("The span did not arrive within 10 s.");
    }
}
