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
    /// <summary>What a transaction has stored so far, per user and app: the notices it sends just before it commits.</summary>
    /// <remarks>Only the scopes and tables are kept, not the events: an import stores an archive of any size.</remarks>
    public sealed class Collector
    {
        private readonly Dictionary<(string UserId, string AppId), (HashSet<string> Scopes, HashSet<string> Tables)> _written = [];

        public void Add(ChangeRecorded change)
        {
            if (!_written.TryGetValue((change.UserId, change.AppId), out var written))
                _written[(change.UserId, change.AppId)] = written = ([], []);
            written.Scopes.Add(RecordKey.Scope(change));
            if (change.MovedFrom is { } left) written.Scopes.Add(left);
            written.Tables.Add(change.Table);
        }

        public IEnumerable<ChangesCommitted> At(DateTimeOffset committedAt) =>
            _written.Select(written => new ChangesCommitted(written.Key.UserId, written.Key.AppId, [.. written.Value.Scopes],
                [.. written.Value.Tables], committedAt));
    }
}
