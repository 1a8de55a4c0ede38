namespace ManaSync.Web.Features.Live;

/// <summary>
/// A push committed changes: published by the push endpoint, fanned out to every node. It only
/// wakes subscribers; they read the changes themselves from their cursors, so a lost notification
/// delays data but never loses it.
/// </summary>
/// <param name="Scopes">The record scopes written (the user's own, or spaces).</param>
/// <param name="Tables">The tables written; empty means "any table" (a list too long for a notification).</param>
/// <param name="CommittedAt">When the push committed, to measure how long notifications take.</param>
public sealed record ChangesCommitted(string UserId, string AppId, IReadOnlyList<string> Scopes, IReadOnlyList<string> Tables,
    DateTimeOffset CommittedAt);
