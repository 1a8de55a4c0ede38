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
/// <param name="CommittedAt">Stamped just before the commit, to measure how long notifications take.</param>
public sealed record ChangesCommitted(string UserId, string AppId, IReadOnlyList<string> Scopes, IReadOnlyList<string> Tables,
    DateTimeOffset CommittedAt)
{
    /// <summary>What a user's events, all of one app, wrote.</summary>
    public static ChangesCommitted Of(string userId, string appId, IReadOnlyCollection<ChangeRecorded> events, DateTimeOffset committedAt) =>
        new(userId, appId,
            events.SelectMany(e => e.MovedFrom is { } left ? [RecordKey.Scope(e), left] : new[] { RecordKey.Scope(e) }).Distinct().ToList(),
            events.Select(e => e.Table).Distinct().ToList(), committedAt);
}
