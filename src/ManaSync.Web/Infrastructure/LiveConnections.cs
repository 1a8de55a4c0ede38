namespace ManaSync.Web.Infrastructure;

/// <summary>Counts this node's open live connections (SSE and WebSocket) and the distinct users behind them.</summary>
public sealed class LiveConnections
{
    private readonly Dictionary<string, int> _perUser = new(StringComparer.Ordinal);
    private readonly Lock _gate = new();

    public int Connections { get { lock (_gate) return _perUser.Values.Sum(); } }

    public int Users { get { lock (_gate) return _perUser.Count; } }

    /// <summary>Registers a connection; disposing the result unregisters it.</summary>
    public IDisposable Open(string userId)
    {
        lock (_gate) _perUser[userId] = _perUser.GetValueOrDefault(userId) + 1;
        return new Registration(this, userId);
    }

    private void Close(string userId)
    {
        lock (_gate)
        {
            if (--_perUser[userId] == 0) _perUser.Remove(userId);
        }
    }

    private sealed class Registration(LiveConnections owner, string userId) : IDisposable
    {
        private int _disposed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0) owner.Close(userId);
        }
    }
}
