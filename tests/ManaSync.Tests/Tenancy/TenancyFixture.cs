using ManaSync.Testing;
using ManaSync.Tests.Support;
using Xunit;

namespace ManaSync.Tests.Tenancy;

/// <summary>A host wired to fake auth and credits services, with one billing-exempt app and one CORS origin.</summary>
public sealed class TenancyFixture : AppFixture
{
    public const string ServiceKey = "test-service-key";
    public const string AllowedOrigin = "https://notes.example";
    public FakeManaServices Services { get; private set; } = null!;

    protected override async Task BeforeStartAsync() => Services = await FakeManaServices.StartAsync();

    protected override IReadOnlyDictionary<string, string> Settings => new Dictionary<string, string>
    {
        ["MANA_AUTH_URL"] = Services.Url,
        ["MANA_CREDITS_URL"] = Services.Url,
        ["MANA_SERVICE_KEY"] = ServiceKey,
        ["BILLING_EXEMPT_APPS"] = "free-app",
        ["CORS_ORIGINS"] = AllowedOrigin,
    };

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        await Services.DisposeAsync();
    }
}

[CollectionDefinition(Name)]
public sealed class TenancyCollection : ICollectionFixture<TenancyFixture>
{
    public const string Name = "tenancy";
}
