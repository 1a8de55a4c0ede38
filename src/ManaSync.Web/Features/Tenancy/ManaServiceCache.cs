using System.Collections.Concurrent;

namespace ManaSync.Web.Features.Tenancy;

/// <summary>
/// Per-user answers from another Mana service, cached: a good answer for 5 minutes, a failure for
/// 30 seconds (so an outage does not cost every request a timeout, yet recovery is noticed soon).
/// </summary>
public sealed class ManaServiceCache<T>(TimeProvider time) where T : class
{
    public static readonly TimeSpan AnswerLifetime = TimeSpan.FromMinutes(5);
    public static readonly TimeSpan FailureLifetime = TimeSpan.FromSeconds(30);

    private readonly ConcurrentDictionary<string, (T? Answer, DateTimeOffset Until)> _entries = new(StringComparer.Ordinal);

    /// <param name="ask">The service's answer, or null when it could not be had.</param>
    public async Task<T?> GetAsync(string userId, Func<Task<T?>> ask)
    {
        var now = time.GetUtcNow();
        if (_entries.TryGetValue(userId, out var cached) && cached.Until > now) return cached.Answer;
        var answer = await ask();
        _entries[userId] = (answer, now + (answer is null ? FailureLifetime : AnswerLifetime));
        return answer;
    }
}
