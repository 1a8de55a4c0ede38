using ManaSync.Events;
using Marten;

namespace ManaSync.Web.Features.Sync;

/// <summary>The writes to the event log that push and import share.</summary>
public static class EventLog
{
    /// <summary>The id of the session's transaction (xid8): the position of everything it stores.</summary>
    public static async Task<long> TransactionIdAsync(IQuerySession session, CancellationToken cancellation) =>
        (await session.QueryAsync<long>("select pg_current_xact_id()::text::bigint", cancellation))[0];

    /// <summary>The events already stored under these ids, as far as the session may see them.</summary>
    public static async Task<IReadOnlyList<ChangeRecorded>> StoredAsync(IQuerySession session, Guid[] eventIds,
        CancellationToken cancellation)
    {
        if (eventIds.Length == 0) return [];
        var events = await session.Events.QueryAllRawEvents().Where(e => e.Id.IsOneOf(eventIds)).ToListAsync(cancellation);
        return events.Select(e => e.Data).OfType<ChangeRecorded>().ToList();
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
