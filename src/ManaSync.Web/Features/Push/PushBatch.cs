using ManaSync.Web.Features.WritePath;

namespace ManaSync.Web.Features.Push;

/// <summary>Who pushes, where, and when the server received it.</summary>
/// <param name="ClientId">The X-Client-Id header; the body's clientId stands in when it is empty.</param>
public sealed record PushOrigin(string UserId, string AppId, string? ClientId, DateTimeOffset ReceivedAt);

/// <summary>A validated push request.</summary>
/// <param name="ClientId">The pushing client: the X-Client-Id header, else the body's clientId.</param>
public sealed record PushBatch(string? ClientId, string? Since, IReadOnlyList<IncomingChange> Changes);
