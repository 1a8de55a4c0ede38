using System.Text.Json;
using Npgsql;

namespace ManaSync.Web.Features.Live;

/// <summary>Tells every node about a commit through PostgreSQL's NOTIFY: no infrastructure beyond the database.</summary>
public static class ChangesCommittedHandler
{
    public const string Channel = "manasync_changes";

    /// <summary>NOTIFY payloads must stay under 8000 bytes; a longer table list is sent as "any table".</summary>
    private const int MaxPayloadBytes = 7000;

    public static async Task Handle(ChangesCommitted commit, NpgsqlDataSource database, CancellationToken cancellation)
    {
        var payload = JsonSerializer.Serialize(commit);
        if (payload.Length > MaxPayloadBytes) payload = JsonSerializer.Serialize(commit with { Tables = [] });
        await using var notify = database.CreateCommand("select pg_notify(@channel, @payload)");
        notify.Parameters.AddWithValue("channel", Channel);
        notify.Parameters.AddWithValue("payload", payload);
        await notify.ExecuteNonQueryAsync(cancellation);
    }
}
