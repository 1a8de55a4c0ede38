using System.Text.Json;
using ManaSync.Events;
using ManaSync.Events.Upcasting;
using ManaSync.Projections.Records;
using ManaSync.Web.Features.Sync;
using ManaSync.Web.Infrastructure;
using ManaSync.Web.Infrastructure.Isolation;
using Marten;
using Npgsql;

namespace ManaSync.Web.Features.Audit;

/// <summary>
/// The events that touched one record, oldest first, as far as the caller may see them (own records
/// and their spaces'), in the newest schema's shape: from every shard holding the caller's scopes.
/// </summary>
public static class RecordEvents
{
    public static Task<IReadOnlyList<ChangeRecorded>> ReadAsync(CallerSessions sessions, Caller caller, string appId,
        string table, string recordId, ChangeUpcasting upcasting, CancellationToken cancellation) =>
        ReadAsync(sessions, caller, appId, table, [recordId], until: null, upcasting, cancellation);

    /// <summary>The events of several records of a table, those received until a time (all when null), in log order.</summary>
    public static async Task<IReadOnlyList<ChangeRecorded>> ReadAsync(CallerSessions sessions, Caller caller, string appId,
        string table, string[] recordIds, DateTimeOffset? until, ChangeUpcasting upcasting, CancellationToken cancellation)
    {
        var shards = await sessions.ShardsOfAsync(caller, cancellation);
        var events = new List<ChangeRecorded>();
        foreach (var shard in shards)
        {
            await using var scope = await sessions.ReadAsync(caller, cancellation, shard);
            await using var reader = await scope.ExecuteAsync([ReadCommand(appId, table, recordIds, until)], cancellation);
            events.AddRange(await SessionBatch.ReadDocumentsAsync<ChangeRecorded>(reader, scope.Serializer, cancellation));
        }
        // With shards: a record's events may lie in two (it moved between them, and an event that moved it may be in both).
        if (shards.Count > 1)
            events = events.DistinctBy(e => e.EventId).OrderBy(e => e.CommitTx).ThenBy(e => e.CommitIndex).ToList();
        var scopes = caller.Scopes.ToHashSet();
        var ids = recordIds.ToHashSet();
        // The exact record, whatever the separator's place in the ids.
        return events.Where(e => e.AppId == appId && e.Table == table && ids.Contains(e.RecordId) && RecordKey.ScopesOf(e).Any(scopes.Contains))
            .Select(upcasting.ToCurrent)
            .ToList();
    }

    /// <summary>The statement that reads the records' events, found through <see cref="RecordIndex"/>.</summary>
    public static NpgsqlBatchCommand ReadCommand(string appId, string table, string[] recordIds, DateTimeOffset? until) =>
        SessionBatch.CommandWith(
            $"""
            select data from {MartenSetup.Schema}.mt_events
            where seq_id in (select seq_id from {MartenSetup.Schema}.{RecordIndex.Table} where record = any($1))
              and ($2::timestamptz is null or (data ->> 'receivedAt')::timestamptz <= $2)
            order by seq_id
            """, recordIds.Select(id => RecordIndex.Of(appId, table, id)).ToArray(), SessionBatch.Time(until));

    /// <summary>Each field's live value, as clients would see it.</summary>
    public static Dictionary<string, JsonElement> LiveValues(RecordView view) =>
        LiveState.Of(view).ToDictionary(field => field.Name, field => field.Value);
}
