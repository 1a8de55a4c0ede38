using System.Collections.Concurrent;
using System.Net;
using System.Text;
using System.Text.Json;

namespace ManaSync.Testing;

/// <summary>
/// Devices pushing batches of new records in a loop, each as soon as the last one is answered, and
/// the ledger a fault test checks afterwards: which batches the server acknowledged, and which were
/// left in doubt (refused, failed, or never answered).
/// </summary>
public sealed class PushLoad
{
    public sealed record Device(string UserId, string ClientId, SyncClient Client);

    /// <summary>One batch as sent: retrying <see cref="Body"/> repeats the same eventIds.</summary>
    public sealed record SentBatch(string UserId, string ClientId, IReadOnlyList<Guid> EventIds, IReadOnlyList<string> RecordIds, byte[] Body);

    private readonly ConcurrentQueue<SentBatch> _acknowledged = new();
    private readonly ConcurrentQueue<SentBatch> _inDoubt = new();
    private readonly ConcurrentQueue<HttpStatusCode> _refusals = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _running;

    private PushLoad(IReadOnlyList<Device> devices, int batchSize) =>
        _running = Task.WhenAll(devices.Select(device => Task.Run(() => PushUntilStoppedAsync(device, batchSize))));

    public static PushLoad Start(IReadOnlyList<Device> devices, int batchSize) => new(devices, batchSize);

    public IReadOnlyCollection<SentBatch> Acknowledged => _acknowledged;
    public IReadOnlyCollection<SentBatch> InDoubt => _inDoubt;

    /// <summary>The status of every answer that was not a 200.</summary>
    public IReadOnlyCollection<HttpStatusCode> Refusals => _refusals;

    /// <summary>The longest any push took to be answered (or to fail), for a report: how long a client hung.</summary>
    public TimeSpan LongestWait => TimeSpan.FromTicks(Interlocked.Read(ref _longestWaitTicks));

    private long _longestWaitTicks;

    /// <summary>Waits until the server has acknowledged this many batches in all; fails after <paramref name="within"/>.</summary>
    public async Task AcknowledgedAtLeastAsync(int count, TimeSpan within)
    {
        var deadline = DateTime.UtcNow + within;
        while (_acknowledged.Count < count)
        {
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"{_acknowledged.Count} of {count} batches acknowledged within {within}.");
            await Task.Delay(20);
        }
    }

    /// <summary>Lets every device finish the request it has under way, and sends no more.</summary>
    public async Task StopAsync()
    {
        await _stop.CancelAsync();
        await _running;
    }

    public static byte[] BodyOf(IReadOnlyList<Guid> eventIds, IReadOnlyList<string> recordIds) =>
        Encoding.UTF8.GetBytes(JsonSerializer.Serialize(Changes.Batch(
            eventIds.Select((eventId, i) => (object)Changes.Insert("tasks", recordIds[i], new { n = i }, eventId)).ToArray())));

    private async Task PushUntilStoppedAsync(Device device, int batchSize)
    {
        for (var number = 0; !_stop.IsCancellationRequested; number++)
        {
            var eventIds = Enumerable.Range(0, batchSize).Select(_ => Guid.NewGuid()).ToList();
            var recordIds = Enumerable.Range(0, batchSize).Select(i => $"{device.ClientId}-b{number}-r{i}").ToList();
            var batch = new SentBatch(device.UserId, device.ClientId, eventIds, recordIds, BodyOf(eventIds, recordIds));
            var acknowledged = false;
            var started = System.Diagnostics.Stopwatch.GetTimestamp();
            try
            {
                var status = (await device.Client.PushRawAsync("todo", batch.Body)).Status;
                acknowledged = status == HttpStatusCode.OK;
                if (!acknowledged) _refusals.Enqueue(status);
            }
            catch (HttpRequestException)
            {
            }
            catch (TaskCanceledException)
            {
            }
            var waited = System.Diagnostics.Stopwatch.GetElapsedTime(started).Ticks;
            for (var longest = Interlocked.Read(ref _longestWaitTicks); waited > longest;
                 longest = Interlocked.Read(ref _longestWaitTicks))
                Interlocked.CompareExchange(ref _longestWaitTicks, waited, longest);
            (acknowledged ? _acknowledged : _inDoubt).Enqueue(batch);
            // As a client does, back off a little after a failure rather than hammering a struggling server.
            if (!acknowledged) await Task.Delay(100);
        }
    }
}
