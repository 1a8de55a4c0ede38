using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using ManaSync.Testing;
using ManaSync.Tests.Support;
using ManaSync.Web.Auth;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using Microsoft.IdentityModel.Tokens;
using Xunit;

namespace ManaSync.Tests.Auth;

/// <summary>A host whose keys come from a JWKS endpoint, with a clock the tests move.</summary>
public sealed class JwksAppFixture : AppFixture
{
    public JwksServer Jwks { get; private set; } = null!;
    public Ed25519SecurityKey Key { get; private set; } = null!;
    public FakeTimeProvider Clock { get; } = new(DateTimeOffset.UtcNow);

    protected override async Task BeforeStartAsync()
    {
        Jwks = await JwksServer.StartAsync();
        Key = Jwks.AddKey("key-1");
    }

    public const string Issuer = "https://auth.mana.test";
    public const string Audience = "mana-sync";

    protected override IReadOnlyDictionary<string, string> Settings => new Dictionary<string, string>
    {
        ["JWKS_URL"] = Jwks.Url, ["JWT_ISSUER"] = Issuer, ["JWT_AUDIENCE"] = Audience,
    };

    protected override void ConfigureServices(IServiceCollection services) => services.AddSingleton<TimeProvider>(Clock);

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        await Jwks.DisposeAsync();
    }
}

[CollectionDefinition(Name)]
public sealed class JwksCollection : ICollectionFixture<JwksAppFixture>
{
    public const string Name = "jwks";
}

[Collection(JwksCollection.Name)]
public sealed class JwtAttackTests(JwksAppFixture app)
{
    private static string B64(object value) => Base64UrlEncoder.Encode(JsonSerializer.SerializeToUtf8Bytes(value));

    private static Dictionary<string, object?> Claims(string? sub = "alice", int expiresIn = 600, int? notBeforeIn = null,
        string issuer = JwksAppFixture.Issuer, string audience = JwksAppFixture.Audience)
    {
        var now = DateTimeOffset.UtcNow;
        var claims = new Dictionary<string, object?>
        {
            ["exp"] = now.AddSeconds(expiresIn).ToUnixTimeSeconds(), ["iat"] = now.ToUnixTimeSeconds(), ["iss"] = issuer, ["aud"] = audience,
        };
        if (sub is not null) claims["sub"] = sub;
        if (notBeforeIn is not null) claims["nbf"] = now.AddSeconds(notBeforeIn.Value).ToUnixTimeSeconds();
        return claims;
    }

    private static string SignEd25519(Ed25519SecurityKey key, object header, object claims)
    {
        var input = B64(header) + "." + B64(claims);
        var signature = new Ed25519SignatureProvider(key, Ed25519SecurityKey.Algorithm).Sign(Encoding.ASCII.GetBytes(input));
        return input + "." + Base64UrlEncoder.Encode(signature);
    }

    private async Task<HttpResponseMessage> PullWith(string? token)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/sync/todo/pull?collection=tasks");
        if (token is not null) request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return await app.Client.SendAsync(request);
    }

    public static TheoryData<string> Attacks() =>
    [
        "alg none", "HS256 signed with the public key", "expired 2 min ago", "nbf in the future",
        "foreign key under a known kid", "unknown kid", "no kid", "empty sub", "no sub", "tampered payload",
        "RS256 header", "garbage", "no token", "wrong issuer", "wrong audience",
    ];

    private string? Forge(string attack)
    {
        var header = new { alg = "EdDSA", typ = "JWT", kid = app.Key.KeyId };
        return attack switch
        {
            "alg none" => B64(new { alg = "none", typ = "JWT", kid = app.Key.KeyId }) + "." + B64(Claims()) + ".",
            "HS256 signed with the public key" => HmacSigned(),
            "expired 2 min ago" => SignEd25519(app.Key, header, Claims(expiresIn: -120)),
            "nbf in the future" => SignEd25519(app.Key, header, Claims(notBeforeIn: 120)),
            "foreign key under a known kid" => SignEd25519(Ed25519Tokens.NewKey(app.Key.KeyId), header, Claims()),
            "unknown kid" => SignEd25519(Ed25519Tokens.NewKey("who"), new { alg = "EdDSA", typ = "JWT", kid = "who" }, Claims()),
            "no kid" => SignEd25519(app.Key, new { alg = "EdDSA", typ = "JWT" }, Claims()),
            "empty sub" => SignEd25519(app.Key, header, Claims(sub: "")),
            "no sub" => SignEd25519(app.Key, header, Claims(sub: null)),
            "tampered payload" => Tampered(),
            "RS256 header" => Rs256Header(),
            "garbage" => "not.a.jwt",
            "wrong issuer" => SignEd25519(app.Key, header, Claims(issuer: "https://evil.example")),
            "wrong audience" => SignEd25519(app.Key, header, Claims(audience: "another-service")),
            _ => null,
        };

        string HmacSigned()
        {
            var input = B64(new { alg = "HS256", typ = "JWT", kid = app.Key.KeyId }) + "." + B64(Claims());
            var secret = app.Key.PublicKey.GetEncoded();
            return input + "." + Base64UrlEncoder.Encode(HMACSHA256.HashData(secret, Encoding.ASCII.GetBytes(input)));
        }

        string Tampered()
        {
            var parts = SignEd25519(app.Key, header, Claims(sub: "alice")).Split('.');
            return parts[0] + "." + B64(Claims(sub: "admin")) + "." + parts[2];
        }

        string Rs256Header()
        {
            var parts = SignEd25519(app.Key, new { alg = "RS256", typ = "JWT", kid = app.Key.KeyId }, Claims()).Split('.');
            return string.Join('.', parts);
        }
    }

    [Theory]
    [MemberData(nameof(Attacks))]
    public async Task A_forged_or_invalid_token_is_refused_with_a_json_401(string attack)
    {
        using var response = await PullWith(Forge(attack));

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        Assert.Equal("unauthorized", body.RootElement.GetProperty("error").GetString());
        Assert.False(string.IsNullOrEmpty(body.RootElement.GetProperty("message").GetString()));
    }

    [Fact]
    public async Task A_valid_token_is_accepted_even_30_s_after_expiry_is_not()
    {
        var header = new { alg = "EdDSA", typ = "JWT", kid = app.Key.KeyId };

        using var valid = await PullWith(SignEd25519(app.Key, header, Claims()));
        using var justExpired = await PullWith(SignEd25519(app.Key, header, Claims(expiresIn: -20)));
        using var longExpired = await PullWith(SignEd25519(app.Key, header, Claims(expiresIn: -45)));

        Assert.Equal(HttpStatusCode.OK, valid.StatusCode);
        Assert.Equal(HttpStatusCode.OK, justExpired.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, longExpired.StatusCode);
    }

    [Fact]
    public async Task A_rotated_in_key_works_at_once_and_bogus_kids_do_not_hammer_the_auth_service()
    {
        app.Clock.Advance(SigningKeys.RefetchInterval);
        var rotated = app.Jwks.AddKey("key-" + Guid.NewGuid().ToString("N")[..6]);
        using var withNewKey = await PullWith(SignEd25519(rotated, new { alg = "EdDSA", typ = "JWT", kid = rotated.KeyId }, Claims()));
        var fetchesAfterRotation = app.Jwks.Fetches;

        for (var i = 0; i < 20; i++)
        {
            var bogus = Ed25519Tokens.NewKey("bogus-" + i);
            using var refused = await PullWith(SignEd25519(bogus, new { alg = "EdDSA", typ = "JWT", kid = bogus.KeyId }, Claims()));
            Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
        }
        var fetchesDuringFlood = app.Jwks.Fetches - fetchesAfterRotation;
        app.Clock.Advance(SigningKeys.RefetchInterval);
        using var afterInterval = await PullWith(SignEd25519(Ed25519Tokens.NewKey("later"), new { alg = "EdDSA", typ = "JWT", kid = "later" }, Claims()));

        Assert.Equal(HttpStatusCode.OK, withNewKey.StatusCode);
        Assert.Equal(0, fetchesDuringFlood);
        Assert.Equal(fetchesAfterRotation + 1, app.Jwks.Fetches);
    }

    [Fact]
    public async Task While_the_jwks_is_unreachable_known_keys_keep_working_and_nothing_else_gets_in()
    {
        var header = new { alg = "EdDSA", typ = "JWT", kid = app.Key.KeyId };
        using (await PullWith(SignEd25519(app.Key, header, Claims()))) { }
        app.Jwks.Down = true;
        try
        {
            app.Clock.Advance(SigningKeys.RefetchInterval);
            var stranger = Ed25519Tokens.NewKey("stranger");
            using var known = await PullWith(SignEd25519(app.Key, header, Claims()));
            using var unknown = await PullWith(SignEd25519(stranger, new { alg = "EdDSA", typ = "JWT", kid = stranger.KeyId }, Claims()));
            using var health = await app.Client.GetAsync("/health");

            Assert.Equal(HttpStatusCode.OK, known.StatusCode);
            Assert.Equal(HttpStatusCode.Unauthorized, unknown.StatusCode);
            Assert.Equal(HttpStatusCode.OK, health.StatusCode);
        }
        finally
        {
            app.Jwks.Down = false;
        }
    }

    [Fact]
    public async Task Health_needs_no_token()
    {
        using var response = await app.Client.GetAsync("/health");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        Assert.Equal("ok", body.RootElement.GetProperty("status").GetString());
        Assert.Equal("mana-sync", body.RootElement.GetProperty("service").GetString());
        Assert.Equal("ok", body.RootElement.GetProperty("database").GetString());
        Assert.Equal(0, body.RootElement.GetProperty("connections").GetInt32());
        Assert.Equal(0, body.RootElement.GetProperty("users").GetInt32());
        Assert.True(body.RootElement.TryGetProperty("timestamp", out _));
    }

    [Fact]
    public async Task Dev_token_routes_do_not_exist_when_a_jwks_url_is_set()
    {
        using var token = await app.Client.PostAsync("/dev/token", new StringContent("""{"sub":"alice"}""", Encoding.UTF8, "application/json"));
        using var jwks = await app.Client.GetAsync("/dev/jwks");

        Assert.Equal(HttpStatusCode.NotFound, jwks.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, token.StatusCode);
    }
}
