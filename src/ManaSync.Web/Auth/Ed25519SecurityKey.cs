using Microsoft.IdentityModel.Tokens;
using Org.BouncyCastle.Crypto.Parameters;
using Org.BouncyCastle.Crypto.Signers;

namespace ManaSync.Web.Auth;

/// <summary>
/// An Ed25519 key for Microsoft.IdentityModel, which reads OKP keys but cannot verify EdDSA itself.
/// The signature work is BouncyCastle's.
/// </summary>
public sealed class Ed25519SecurityKey : AsymmetricSecurityKey
{
    public const string Algorithm = "EdDSA";

    public Ed25519SecurityKey(Ed25519PublicKeyParameters publicKey, string keyId, Ed25519PrivateKeyParameters? privateKey = null)
    {
        PublicKey = publicKey;
        PrivateKey = privateKey;
        KeyId = keyId;
        CryptoProviderFactory = Ed25519CryptoProviderFactory.Instance;
    }

    public Ed25519PublicKeyParameters PublicKey { get; }
    public Ed25519PrivateKeyParameters? PrivateKey { get; }

    public override int KeySize => 256;

    [Obsolete("Use PrivateKeyStatus")]
    public override bool HasPrivateKey => PrivateKey is not null;

    public override PrivateKeyStatus PrivateKeyStatus =>
        PrivateKey is null ? PrivateKeyStatus.DoesNotExist : PrivateKeyStatus.Exists;

    /// <summary>The key as a JWK (RFC 8037): kty OKP, crv Ed25519, x = base64url public key.</summary>
    public object ToJwk() => new
    {
        kty = "OKP", crv = "Ed25519", alg = Algorithm, use = "sig", kid = KeyId,
        x = Base64UrlEncoder.Encode(PublicKey.GetEncoded()),
    };
}

public sealed class Ed25519CryptoProviderFactory : CryptoProviderFactory
{
    public static readonly Ed25519CryptoProviderFactory Instance = new();

    public override bool IsSupportedAlgorithm(string algorithm, SecurityKey key) =>
        algorithm == Ed25519SecurityKey.Algorithm && key is Ed25519SecurityKey;

    public override SignatureProvider CreateForVerifying(SecurityKey key, string algorithm) =>
        IsSupportedAlgorithm(algorithm, key)
            ? new Ed25519SignatureProvider((Ed25519SecurityKey)key, algorithm)
            : throw new NotSupportedException($"Only {Ed25519SecurityKey.Algorithm} with Ed25519 keys is supported.");

    public override SignatureProvider CreateForSigning(SecurityKey key, string algorithm) => CreateForVerifying(key, algorithm);

    public override void ReleaseSignatureProvider(SignatureProvider signatureProvider) => signatureProvider.Dispose();
}

public sealed class Ed25519SignatureProvider(Ed25519SecurityKey key, string algorithm) : SignatureProvider(key, algorithm)
{
    public override byte[] Sign(byte[] input)
    {
        var signer = new Ed25519Signer();
        signer.Init(true, key.PrivateKey ?? throw new InvalidOperationException("This key cannot sign."));
        signer.BlockUpdate(input, 0, input.Length);
        return signer.GenerateSignature();
    }

    public override bool Verify(byte[] input, byte[] signature) =>
        Verify(input, 0, input.Length, signature, 0, signature.Length);

    /// <summary>The overload the JWT handler calls.</summary>
    public override bool Verify(byte[] input, int inputOffset, int inputLength, byte[] signature, int signatureOffset, int signatureLength)
    {
        if (signatureLength != Ed25519PrivateKeyParameters.SignatureSize) return false;
        return VerifiedSignatures.Shared.Verify(key.PublicKey.GetEncoded(), input.AsSpan(inputOffset, inputLength),
            signature.AsSpan(signatureOffset, signatureLength), () =>
            {
                var verifier = new Ed25519Signer();
                verifier.Init(false, key.PublicKey);
                verifier.BlockUpdate(input, inputOffset, inputLength);
                return verifier.VerifySignature(signature.AsSpan(signatureOffset, signatureLength).ToArray());
            });
    }

    protected override void Dispose(bool disposing)
    {
    }
}
