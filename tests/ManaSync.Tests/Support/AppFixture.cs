using Alba;
using ManaSync.Events;
using ManaSync.Web.Auth;
using ManaSync.Web.Features.Dev;
using ManaSync.Web.Infrastructure;
using Marten;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Npgsql;
using ManaSync.Testing;
using ManaSync.Tests.Tenancy;
using Xunit;

namespace ManaSync.Tests.Support;

/// <summary>
/// A ManaSync host (in-memory HTTP, real PostgreSQL) shared by the tests of one collection, with a
/// database of its own. Tests call <see cref="ResetAsync"/> first, so each starts from empty data.
/// </summary>
public class AppFixture : IAsyncLifetime
{
    public IAlbaHost Host { get; private set; } = null!;
    public string ConnectionString { get; private set; } = null!;
    public HttpClient Client { get; private set; } = null!;

    /// <summary>Extra settings for a collection's host, on top of the defaults.</summary>
    protected virtual IReadOnlyDictionary<string, string> Settings => new Dictionary<string, string>();

    /// <summary>Runs before the host starts (e.g. to start services the settings point at).</summary>
    protected virtual Task BeforeStartAsync() => Task.CompletedTask;

    /// <summary>Replaces services of the host, after the application's own registrations.</summary>
    protected virtual void ConfigureServices(IServiceCollection services)
    {
    }

    public async Task InitializeAsync()
    {
        ConnectionString = await TestCluster.CreateDatabaseAsync();
        await BeforeStartAsync();
        Host = await AlbaHost.For<Program>(builder =>
        {
            builder.UseEnvironment(Environments.Development);
            builder.UseSetting("DATABASE_URL", ConnectionString);
            foreach (var (name, value) in Settings) builder.UseSetting(name, value);
            builder.ConfigureServices(ConfigureServices);
        });
        Client = Host.Server.CreateClient();
    }

    public virtual async Task DisposeAsync()
    {
        Client.Dispose();
        await Host.DisposeAsync();
    }

    public IDocumentStore Store => Host.Services.GetRequiredService<IDocumentStore>();

    /// <summary>A real EdDSA token from the development issuer.</summary>
    public string TokenFor(string userId, string? scope = null) => TokenFor(Host, userId, scope);

    /// <summary>A real EdDSA token from a Development host's own issuer.</summary>
    public static string TokenFor(IAlbaHost host, string userId, string? scope = null) =>
        Ed25519Tokens.Issue(host.Services.GetRequiredService<DevIssuer>().Key, userId, TimeSpan.FromHours(1), DateTimeOffset.UtcNow, scope);

    public SyncClient ClientFor(string userId, string? clientId = null) => new(Client, TokenFor(userId), clientId);

    /// <summary>A client whose token carries the audit scope (PROTOCOL §12).</summary>
    public SyncClient AuditorFor(string userId, string? clientId = null) =>
        new(Client, TokenFor(userId, "openid " + CurrentUser.AuditScope), clientId);

    /// <summary>A device running the deployed web client's sync engine for one app.</summary>
    public DeployedClient DeviceFor(string userId, string clientId, string appId, IReadOnlyList<string> tables, Func<DateTimeOffset>? clock = null) =>
        new(Client, TokenFor(userId), userId, appId, clientId, tables, clock ?? (() => DateTimeOffset.UtcNow));

    /// <summary>POST /backup/import of an archive as the user.</summary>
    /// <param name="token">The bearer token; the user's own when null.</param>
    public async Task<Reply> ImportAsync(string userId, byte[] archive, string? token = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/backup/import") { Content = new ByteArrayContent(archive) };
        request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", token ?? TokenFor(userId));
        using var response = await Client.SendAsync(request);
        return new Reply(response.StatusCode, await response.Content.ReadAsStringAsync());
    }

    public async Task ResetAsync()
    {
        await Store.Advanced.Clean.DeleteAllEventDataAsync();
        await Store.Advanced.Clean.DeleteAllDocumentsAsync();
        await using var connection = new NpgsqlConnection(ConnectionString);
        await connection.OpenAsync();
        await using var auditors = new NpgsqlCommand($"truncate {MartenSetup.Schema}.auditors, {MartenSetup.Schema}.audit_access, {MartenSetup.Schema}.record_events", connection);
        await auditors.ExecuteNonQueryAsync();
    }

    public async Task<IReadOnlyList<ChangeRecorded>> StoredEventsAsync()
    {
        await using var session = Store.QuerySession();
        var events = await session.Events.QueryAllRawEvents().OrderBy(e => e.Sequence).ToListAsync();
        return events.Select(e => (ChangeRecorded)e.Data).ToList();
    }
}

[CollectionDefinition(Name)]
public sealed class SyncCollection : ICollectionFixture<AppFixture>
{
    public const string Name = "sync";
}

/// <summary>
/// Tests that hold write transactions open for seconds on purpose. The commit horizon is cluster-wide,
/// so while they do, pulls in every other test's database wait and come back short: they run alone.
/// Their host knows memberships, so they can hold a shared space's write lock.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class LongTransactionCollection : ICollectionFixture<TenancyFixture>
{
    public const string Name = "long transactions";
}
