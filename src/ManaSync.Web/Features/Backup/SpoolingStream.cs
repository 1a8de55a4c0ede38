namespace ManaSync.Web.Features.Backup;

/// <summary>
/// Collects what a writer with synchronous parts (the zip writer's headers and central directory)
/// writes, for the caller to pass on asynchronously in chunks: Kestrel refuses synchronous writes,
/// and memory stays bounded by how often <see cref="DrainAsync"/> is called.
/// </summary>
public sealed class SpoolingStream(Stream destination) : Stream
{
    public const int ChunkBytes = 64 * 1024;
    private readonly MemoryStream _buffer = new();
    private long _written;

    public override bool CanRead => false;
    public override bool CanSeek => false;
    public override bool CanWrite => true;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => _written; set => throw new NotSupportedException(); }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        _buffer.Write(buffer);
        _written += buffer.Length;
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
    {
        Write(buffer.AsSpan(offset, count));
        return Task.CompletedTask;
    }

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        Write(buffer.Span);
        return ValueTask.CompletedTask;
    }

    /// <summary>Passes on what was collected, once there is at least <paramref name="atLeast"/> bytes of it.</summary>
    public async Task DrainAsync(CancellationToken cancellation, int atLeast = ChunkBytes)
    {
        if (_buffer.Length < atLeast || _buffer.Length == 0) return;
        await destination.WriteAsync(_buffer.GetBuffer().AsMemory(0, (int)_buffer.Length), cancellation);
        _buffer.SetLength(0);
    }

    public override void Flush()
    {
    }

    public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
}
