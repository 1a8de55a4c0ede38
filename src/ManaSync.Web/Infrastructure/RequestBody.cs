using System.Buffers;

namespace ManaSync.Web.Infrastructure;

public static class RequestBody
{
    public const long MaxBytes = 10 * 1024 * 1024;

    /// <summary>The whole body, or null when it is larger than <see cref="MaxBytes"/> (read no further than that).</summary>
    public static async Task<ReadOnlyMemory<byte>?> ReadAsync(HttpRequest request, CancellationToken cancellation)
    {
        if (request.ContentLength > MaxBytes) return null;
        var buffer = new ArrayBufferWriter<byte>((int)Math.Clamp(request.ContentLength ?? 16 * 1024, 1, MaxBytes));
        while (true)
        {
            var memory = buffer.GetMemory(64 * 1024);
            var read = await request.Body.ReadAsync(memory, cancellation);
            if (read == 0) return buffer.WrittenMemory;
            buffer.Advance(read);
            if (buffer.WrittenCount > MaxBytes) return null;
        }
    }
}
