using System.Text;
using System.Text.Json;
using ManaSync.Web.Features.Sync;
using Marten;
using Npgsql;

namespace ManaSync.Web.Features.Live;

/// <summary>
/// Tells every node about a commit through PostgreSQL's NOTIFY, sent by the committing transaction
/// itself: PostgreSQL delivers it when, and only when, that transaction commits. So no commit goes
/// unannounced (with a separate NOTIFY after the commit, a node that died in between left other
/// devices' open streams to find the change on their next reread, up to a minute later), and a
/// rolled-back push wakes nobody.
/// </summary>
public static class CommitNotice
{
    public const string Channel = "manasync_changes";

    /// <summary>
    /// PostgreSQL refuses payloads of 8000 bytes or more, and a refused NOTIFY would fail the push
    /// that sends it, so every payload stays below this.
    /// </summary>
    public const int MaxPayloadBytes = 7000;

    /// <summary>
    /// Sends the NOTIFY inside the session's open transaction, to be delivered at its commit. Sent
    /// at once, not queued into Marten's save: Marten's batch takes a queued statement's result (even
    /// pg_notify's empty one) for the next operation's.
    /// </summary>
    public static async Task SendAsync(IDocumentSession session, ChangesCommitted commit, CancellationToken cancellation)
    {
        var commands = Payloads(commit)
            .Select(payload => new NpgsqlBatchCommand("select pg_notify($1, $2)") { Parameters = { new() { Value = Channel }, new() { Value = payload } } })
            .ToArray();
        if (commands.Length == 0) return;
        await using var notify = SessionBatch.For(session, commands);
        await notify.ExecuteNonQueryAsync(cancellation);
    }

    /// <summary>
    /// Usually one payload. A table list too long to fit is sent as "any table"; scopes that do not
    /// fit into one payload are spread over several, so every scope's subscribers still hear of it.
    /// </summary>
    public static IEnumerable<string> Payloads(ChangesCommitted commit)
    {
        var whole = JsonSerializer.Serialize(commit);
        if (Bytes(whole) <= MaxPayloadBytes)
        {
            yield return whole;
            yield break;
        }

        var anyTable = commit with { Tables = [] };
        var emptySize = Bytes(JsonSerializer.Serialize(anyTable with { Scopes = [] }));
        if (emptySize > MaxPayloadBytes) yield break; // a user or app id this long cannot be announced at all
        var scopes = new List<string>();
        var size = emptySize;
        foreach (var scope in commit.Scopes)
        {
            var scopeSize = Bytes(JsonSerializer.Serialize(scope)) + 1;
            if (emptySize + scopeSize > MaxPayloadBytes) continue; // cannot be announced; streams find it on their reread
            if (size + scopeSize > MaxPayloadBytes)
            {
                yield return JsonSerializer.Serialize(anyTable with { Scopes = scopes });
                (scopes, size) = ([], emptySize);
            }
            scopes.Add(scope);
            size += scopeSize;
        }
        if (scopes.Count > 0) yield return JsonSerializer.Serialize(anyTable with { Scopes = scopes });
    }

    /// <summary>The commit a payload announces, or null when it is not one (a payload missing a member included).</summary>
    public static ChangesCommitted? Read(string payload)
    {
        try
        {
            return JsonSerializer.Deserialize<ChangesCommitted>(payload) is { UserId: not null, AppId: not null, Scopes: not null, Tables: not null } commit
                ? commit
                : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private static int Bytes(string payload) => Encoding.UTF8.GetByteCount(payload);
}
