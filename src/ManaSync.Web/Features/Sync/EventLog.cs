using ManaSync.Events;
using ManaSync.Web.Infrastructure;
using Marten;
using Npgsql;

namespace ManaSync.Web.Features.Sync;

/// <summary>The writes to the event log that push and import share.</summary>
public static class EventLog
{
    /// <summary>Reads the events stored under these ids, as part of a larger batch.</summary>
    public static NpgsqlBatchCommand StoredCommand(Guid[] eventIds) =>
        SessionBatch.Command($"select data from {MartenSetup.Schema}.mt_events where id = any($1)", eventIds);

    /// <summary>The events already stored under these ids, as far as the session may see them.</summary>
    public static async Task<IReadOnlyList<ChangeRecorded>> StoredAsync(IQuerySession session, Guid[] eventIds,
        CancellationToken cancellation)
    {
        if (eventIds.Length == 0) return [];
        await using var batch = SessionBatch.For(session, StoredCommand(eventIds));
        await using var reader = await batch.ExecuteReaderAsync(cancellation);
        return await SessionBatch.ReadDocumentsAsync<ChangeRecorded>(reader, session, cancellation);
    }

    /// <summary>Appends the events under their own eventIds, so a retry can be recognised by id.</summary>
    public static void Append(IDocumentSession session, string stream, IEnumerable<ChangeRecorded> events) =>
        session.Events.Append(stream, events.Select(change =>
        {
            var wrapped = session.Events.BuildEvent(change);
            wrapped.Id = change.EventId;
            return (object)wrapped;
        }).ToArray());
}
