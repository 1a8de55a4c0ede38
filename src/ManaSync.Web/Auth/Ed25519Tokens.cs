using System.Text;
using System.Text.Json;
using Microsoft.IdentityModel.Tokens;
using Org.BouncyCastle.Crypto.Generators;
using Org.BouncyCastle.Crypto.Parameters;
using Org.BouncyCastle.Security;

namespace ManaSync.Web.Auth;

/// <summary>Makes Ed25519 keys and EdDSA-signed JWTs: the development issuer's (and the tests') tokens.</summary>
public static class Ed25519Tokens
{
    public static Ed25519SecurityKey NewKey(string keyId)
    {
        var generator = new Ed25519KeyPairGenerator();
        generator.Init(new Ed25519KeyGenerationParameters(new SecureRandom()));
        var pair = generator.GenerateKeyPair();
        return new Ed25519SecurityKey((Ed25519PublicKeyParameters)pair.Public, keyId, (Ed25519PrivateKeyParameters)pair.Private);
    }

    /// <summary>A compact JWS over the given claims; the header is {"alg":"EdDSA","typ":"JWT","kid":…}.</summary>
    public static string Sign(Ed25519SecurityKey key, IReadOnlyDictionary<string, object?> claims)
    {
        var header = Encode(new Dictionary<string, object?> { ["alg"] = Ed25519SecurityKey.Algorithm, ["typ"] = "JWT", ["kid"] = key.KeyId });
        var signingInput = header + "." + Encode(claims);
        var provider = new Ed25519SignatureProvider(key, Ed25519SecurityKey.Algorithm);
        return signingInput + "." + Base64UrlEncoder.Encode(provider.Sign(Encoding.ASCII.GetBytes(signingInput)));
    }

    /// <param name="scope">The space-separated scope claim ("audit" makes an auditor's token); none when null.</param>
    public static string Issue(Ed25519SecurityKey key, string subject, TimeSpan lifetime, DateTimeOffset now, string? scope = null)
    {
        var claims = new Dictionary<string, object?>
        {
            ["sub"] = subject,
            ["iat"] = now.ToUnixTimeSeconds(),
            ["exp"] = now.Add(lifetime).ToUnixTimeSeconds(),
        };
        if (scope is not null) claims[CurrentUser.ScopeClaim] = scope;
        return Sign(key, claims);
    }

    private static string Encode(object value) => Base64UrlEncoder.Encode(JsonSerializer.SerializeToUtf8Bytes(value));
}
