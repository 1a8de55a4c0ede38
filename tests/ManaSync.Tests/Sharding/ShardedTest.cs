using ManaSync.Testing;
using Npgsql;
using Xunit;

namespace ManaSync.Tests.Sharding;

/// <summary>A test on the sharded host: a user of its own whose records live in main, and their team, whose records live in s2.</summary>
[Collection(ShardedCollection.Name)]
public abstract class ShardedTest(ShardedFixture app) : IAsyncLifetime
{
    protected ShardedFixture App { get; } = app;
    protected string User { get; } = UniqueIds.New("user");
    protected string Team { get; } = UniqueIds.New("team");

    public virtual async Task InitializeAsync()
    {
        App.Services.Spaces[User] = [Team];
        await App.PlaceAsync(("u:" + User, "main"), ("s:" + Team, "s2"));
    }

    public Task DisposeAsync() => Task.CompletedTask;

    /// <summary>A count in one shard's database, read as its owner (past row security).</summary>
    protected static async Task<long> CountAsync(string database, string sql, params object[] parameters)
    {
        await using var connection = new NpgsqlConnection(database);
        await connection.OpenAsync();
        await using var count = new NpgsqlCommand(sql, connection);
        foreach (var parameter in parameters) count.Parameters.Add(new NpgsqlParameter { Value = parameter });
        return (long)(await count.ExecuteScalarAsync())!;
    }

    /// <summary>The shard the map in main gives a scope, if any.</summary>
    protected async Task<string?> ShardOfAsync(string scope)
    {
        await using var connection = new NpgsqlConnection(App.ConnectionString);
        await connection.OpenAsync();
        await using var where = new NpgsqlCommand("select shard from manasync.shard_map where scope = $1", connection) { Parameters = { new() { Value = scope } } };
        return (string?)await where.ExecuteScalarAsync();
    }

    protected static Task<long> CountViewsAsync(string database, string scope) =>
        CountAsync(database, "select count(*) from manasync.mt_doc_recordview where scope = $1", scope);
}
