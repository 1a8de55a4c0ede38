namespace ManaSync.Web.Features.Live;

/// <summary>
/// A push committed changes: published by the push endpoint, fanned out to every node. It only
/// wakes subscribers; they read the changes themselves from their cursors, so a lost notification
/// delays data but never loses it.
/// </summary>
/// <param name="Scopes">The record scopes written (the user's own, or spaces).</param>
public sealed record ChangesCommitted(string UserId, string AppId, IReadOnlyList<string> Scopes, IReadOnlyList<string> Tables);
