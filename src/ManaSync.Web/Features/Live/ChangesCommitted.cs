using ManaSync.Events;
using ManaSync.Projections.Records;

namespace ManaSync.Web.Features.Live;

/// <summary>
/// A transaction stored changes: sent by that transaction itself (<see cref="CommitNotice"/>) to every
/// node. It only wakes subscribers; they read the changes themselves from their cursors, so a lost
/// notification delays data but never loses it.
/// </summary>
/// <param name="Scopes">The record scopes written (the user's own, or spaces).</param>
/// <param name="Tables">The tables written; empty means "any table" (a list too long for a notification).</param>
/// <param name="CommittedAt">Stamped as the changes are saved (for a push, just before its commit), to measure how long notifications take.</param>
/// <param name="Trace">The W3C traceparent of the write's span, when traced: every node that hears the notice continues that trace.</param>
public sealed record ChangesCommitted(string UserId, string AppId, IReadOnlyList<string> Scopes, IReadOnlyList<string> Tables,
    DateTimeOffset CommittedAt, string? Trace = null)
{
    /// <summary>What these events wrote, one notice per user and app.</summary>
    public static IEnumerable<ChangesCommitted> Of(IEnumerable<ChangeRecorded> events, DateTimeOffset committedAt, string? trace) =>
        events.GroupBy(e => (e.UserId, e.AppId)).Select(written => new ChangesCommitted(written.Key.UserId, written.Key.AppId,
            written.SelectMany(RecordKey.ScopesOf).Distinct().ToList(),
            written.Select(e => e.Table).Distinct().ToList(), committedAt, trace));
}
