using System.Text.Json;
using ManaSync.Events;
using ManaSync.Events.Upcasting;
using ManaSync.Projections.Records;
using ManaSync.Web.Infrastructure;
using ManaSync.Web.Infrastructure.Isolation;
using Marten;
using Npgsql;

namespace ManaSync.Web.Features.Audit;

/// <summary>
/// The events that touched one record, oldest first, as far as the caller may see them (own records
/// and their spaces'), in the newest schema's shape.
/// </summary>
public static class RecordEvents
{
    public const string Index = "ix_mt_events_by_record";

    public static async Task<IReadOnlyList<ChangeRecorded>> ReadAsync(CallerSessions sessions, Caller caller, string appId,
        string table, string recordId, ChangeUpcasting upcasting, CancellationToken cancellation)
    {
        await using var scope = await sessions.ReadAsync(caller, cancellation);
        var serializer = scope.Session.DocumentStore.Options.Serializer();
        await using var query = new NpgsqlCommand(
            $"""
            select data from {MartenSetup.Schema}.mt_events
            where data ->> 'appId' = @app and data ->> 'table' = @table and data ->> 'recordId' = @id
            order by seq_id
            """, (NpgsqlConnection)scope.Session.Connection!);
        query.Parameters.AddWithValue("app", appId);
        query.Parameters.AddWithValue("table", table);
        query.Parameters.AddWithValue("id", recordId);
        var events = new List<ChangeRecorded>();
        await using var reader = await query.ExecuteReaderAsync(cancellation);
        while (await reader.ReadAsync(cancellation)) events.Add(serializer.FromJson<ChangeRecorded>(reader, 0));
        var scopes = caller.Scopes.ToHashSet();
        return events.Where(e => scopes.Contains(RecordKey.Scope(e)) || e.MovedFrom is { } left && scopes.Contains(left))
            .Select(upcasting.ToCurrent)
            .ToList();
    }

    /// <summary>Each field's live value, as clients would see it.</summary>
    public static Dictionary<string, JsonElement> LiveValues(RecordView view) =>
        LiveState.Of(view).ToDictionary(field => field.Name, field => field.Value);
}
