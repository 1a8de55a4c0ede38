using System.Data.Common;
using System.Text;
using System.Text.Json;
using Marten;
using Marten.Internal.Operations;
using Marten.Storage;
using OperationRole = Weasel.Core.OperationRole;
using IStorageSession = Weasel.Storage.IStorageSession;
using Weasel.Postgresql;

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
    /// Queues the NOTIFY into the session's next save, so it travels in the same round trip as the events it
    /// announces; PostgreSQL delivers it at the commit.
    /// </summary>
    public static void Queue(IDocumentSession session, ChangesCommitted commit)
    {
        var payloads = Payloads(commit).ToArray();
        if (payloads.Length > 0) session.QueueOperation(new Notify(payloads));
    }

    /// <summary>
    /// The NOTIFY as one of Marten's operations. Not a plain queued SQL command: Marten would then take
    /// pg_notify's (empty) result for the next operation's; this one takes its own result.
    /// </summary>
    private sealed class Notify(string[] payloads) : IStorageOperation
    {
        // What Marten's own SQL operations name: no document storage to make sure of.
        public Type DocumentType => typeof(StorageFeatures);

        public void ConfigureCommand(ICommandBuilder builder, IStorageSession session)
        {
            builder.Append("select pg_notify(");
            builder.AppendParameter(Channel);
            builder.Append(", payload) from unnest(");
            builder.AppendParameter(payloads);
            builder.Append(") as payload");
        }

        public Task PostprocessAsync(DbDataReader reader, IList<Exception> exceptions, CancellationToken token) => Task.CompletedTask;

        public OperationRole Role() => OperationRole.Other;
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
