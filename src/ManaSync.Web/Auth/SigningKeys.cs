using System.Collections.Concurrent;
using System.Text.Json;
using Microsoft.IdentityModel.Tokens;
using Org.BouncyCastle.Crypto.Parameters;

namespace ManaSync.Web.Auth;

/// <summary>
/// The Ed25519 keys tokens may be signed with, by kid. Keys come from JWKS_URL; a token naming an
/// unknown kid triggers one refetch, at most every 10 s, so a rotated-in key works at once while a
/// flood of bogus kids cannot hammer the auth service. A failed fetch keeps the keys already known.
/// </summary>
public sealed class SigningKeys(IHttpClientFactory httpClients, TimeProvider time, ILogger<SigningKeys> logger)
{
    public static readonly TimeSpan RefetchInterval = TimeSpan.FromSeconds(10);

    private readonly ConcurrentDictionary<string, Ed25519SecurityKey> _keys = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _fetchGate = new(1, 1);
    private DateTimeOffset _lastFetch = DateTimeOffset.MinValue;

    public Uri? JwksUrl { get; set; }

    public Ed25519SecurityKey? Find(string? keyId) =>
        keyId is not null && _keys.TryGetValue(keyId, out var key) ? key : null;

    /// <summary>Adds a key directly (the development issuer's own key).</summary>
    public void Add(Ed25519SecurityKey key) => _keys[key.KeyId] = key;

    public async Task EnsureAsync(string keyId, CancellationToken cancellation)
    {
        if (_keys.ContainsKey(keyId) || JwksUrl is null) return;
        await _fetchGate.WaitAsync(cancellation);
        try
        {
            if (_keys.ContainsKey(keyId) || time.GetUtcNow() - _lastFetch < RefetchInterval) return;
            _lastFetch = time.GetUtcNow();
            await FetchAsync(cancellation);
        }
        finally
        {
            _fetchGate.Release();
        }
    }

    private async Task FetchAsync(CancellationToken cancellation)
    {
        try
        {
            using var client = httpClients.CreateClient(nameof(SigningKeys));
            using var response = await client.GetAsync(JwksUrl, cancellation);
            response.EnsureSuccessStatusCode();
            using var jwks = JsonDocument.Parse(await response.Content.ReadAsStreamAsync(cancellation));
            foreach (var jwk in jwks.RootElement.GetProperty("keys").EnumerateArray())
                if (TryReadKey(jwk) is { } key) _keys[key.KeyId] = key;
        }
        catch (Exception e) when (e is HttpRequestException or JsonException or KeyNotFoundException
                                      or InvalidOperationException or TaskCanceledException)
        {
            logger.LogWarning("Could not fetch the JWKS from {JwksUrl}: {Reason}", JwksUrl, e.Message);
        }
    }

    private static Ed25519SecurityKey? TryReadKey(JsonElement jwk)
    {
        string? Member(string name) =>
            jwk.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;

        if (Member("kty") != "OKP" || Member("crv") != "Ed25519" || Member("kid") is not { Length: > 0 } kid ||
            Member("x") is not { } x)
            return null;
        try
        {
            var bytes = Base64UrlEncoder.DecodeBytes(x);
            return bytes.Length == Ed25519PublicKeyParameters.KeySize
                ? new Ed25519SecurityKey(new Ed25519PublicKeyParameters(bytes), kid)
                : null;
        }
        catch (FormatException)
        {
            return null;
        }
    }
}
