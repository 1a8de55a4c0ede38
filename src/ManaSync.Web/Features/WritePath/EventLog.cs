using ManaSync.Events;
using ManaSync.Web.Features.Sync;
using ManaSync.Web.Infrastructure;
using Marten;
using Npgsql;

namespace ManaSync.Web.Features.WritePath;

/// <summary>The event log as the write path reads and appends it.</summary>
public static class EventLog
{
    /// <summary>Reads the events stored under these ids, as part of a larger batch.</summary>
    public static NpgsqlBatchCommand StoredCommand(Guid[] eventIds) =>
        SessionBatch.Command($"select data from {MartenSetup.Schema}.mt_events where id = any($1)", eventIds);

    /// <summary>Appends the events under their own eventIds, so a retry can be recognised by id.</summary>
    public static void Append(IDocumentSession session, string stream, IEnumerable<ChangeRecorded> events) =>
        session.Events.Append(stream, events.Select(change =>
        {
            var wrapped = session.Events.BuildEvent(change);
            wrapped.Id = change.EventId;
            return (object)wrapped;
        }).ToArray());
}
