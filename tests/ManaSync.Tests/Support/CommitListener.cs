using System.Threading.Channels;
using ManaSync.Web.Features.Live;
using Npgsql;

namespace ManaSync.Tests.Support;

/// <summary>Hears the commit notifications that every node hears, on a LISTEN connection of its own.</summary>
public sealed class CommitListener : IAsyncDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);
    private readonly NpgsqlConnection _connection;
    private readonly Channel<ChangesCommitted> _heard = Channel.CreateUnbounded<ChangesCommitted>();
    private readonly CancellationTokenSource _stop = new();
    private Task _listening = Task.CompletedTask;

    private CommitListener(NpgsqlConnection connection) => _connection = connection;

    public static async Task<CommitListener> StartAsync(string connectionString)
    {
        var listener = new CommitListener(new NpgsqlConnection(connectionString));
        await listener._connection.OpenAsync();
        listener._connection.Notification += (_, notification) =>
            listener._heard.Writer.TryWrite(CommitNotice.Read(notification.Payload)
                                            ?? throw new InvalidOperationException($"Not a commit: {notification.Payload}"));
        await using (var listen = new NpgsqlCommand($"listen {CommitNotice.Channel}", listener._connection))
            await listen.ExecuteNonQueryAsync();
        listener._listening = listener.ListenAsync();
        return listener;
    }

    /// <summary>The next commit announced for this user; throws when none comes within 10 s.</summary>
    public async Task<ChangesCommitted> NextOfAsync(string userId)
    {
        using var patience = new CancellationTokenSource(Patience);
        while (true)
        {
            var commit = await _heard.Reader.ReadAsync(patience.Token);
            if (commit.UserId == userId) return commit;
        }
    }

    private async Task ListenAsync()
    {
        try
        {
            while (true) await _connection.WaitAsync(_stop.Token);
        }
        catch (OperationCanceledException)
        {
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await _listening;
        await _connection.DisposeAsync();
        _stop.Dispose();
    }
}
