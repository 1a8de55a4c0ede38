using System.Net;
using ManaSync.Tests.Support;
using Xunit;
using static ManaSync.Testing.Changes;

namespace ManaSync.Tests.Sync;

/// <summary>
/// Big batches side by side: a push's locks must not grow with its size, or PostgreSQL's lock table
/// (6,400 entries by default) runs out and pushes fail with "out of shared memory".
/// </summary>
public sealed class LargeBatchTests(AppFixture app) : SyncTest(app)
{
    [Fact]
    public async Task Four_users_pushing_the_largest_batch_at_once_all_succeed()
    {
        var users = Enumerable.Range(0, 4).Select(u => $"big-{u}").ToList();

        var replies = await Task.WhenAll(users.Select(user => App.ClientFor(user, "phone").PushAsync("todo",
            Batch(Enumerable.Range(0, 5000).Select(i => (object)Insert("tasks", $"r{i:D4}", new { n = i })).ToArray()))));

        Assert.All(replies, reply => reply.AssertStatus(HttpStatusCode.OK));
        foreach (var user in users)
        {
            var pulled = (await App.ClientFor(user, "laptop").PullAsync("todo", "tasks", limit: 5000)).AssertStatus(HttpStatusCode.OK);
            Assert.Equal(5000, pulled.Changes.Count);
        }
    }
}
