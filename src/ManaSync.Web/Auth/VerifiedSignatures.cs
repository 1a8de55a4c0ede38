using System.Collections.Concurrent;
using System.Security.Cryptography;

namespace ManaSync.Web.Auth;

/// <summary>
/// Signatures already verified, by a SHA-256 digest of key, signed input and signature. A device sends the same token
/// with every request until it refreshes it, and verifying Ed25519 costs more than the rest of a token's checks; a
/// signature that verified once under a key always will, so only successes are kept. The token's lifetime, issuer and
/// key are still checked on every request, and a key dropped from the key set is no longer offered for verifying.
/// </summary>
public sealed class VerifiedSignatures(int capacity = 10_000)
{
    public static readonly VerifiedSignatures Shared = new();

    private readonly ConcurrentDictionary<UInt128, byte> _verified = new();

    public bool Verify(ReadOnlySpan<byte> publicKey, ReadOnlySpan<byte> input, ReadOnlySpan<byte> signature, Func<bool> verify)
    {
        var digest = Digest(publicKey, input, signature);
        if (_verified.ContainsKey(digest)) return true;
        if (!verify()) return false;
        // Bounded: emptied when full, so a burst of new tokens costs one verification each again, never memory.
        if (_verified.Count >= capacity) _verified.Clear();
        _verified.TryAdd(digest, 0);
        return true;
    }

    public int Count => _verified.Count;

    /// <summary>128 of SHA-256's bits: forging a token whose digest matches a remembered one would take about 2^128 tries.</summary>
    private static UInt128 Digest(ReadOnlySpan<byte> publicKey, ReadOnlySpan<byte> input, ReadOnlySpan<byte> signature)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        Span<byte> lengths = stackalloc byte[8];
        BitConverter.TryWriteBytes(lengths, publicKey.Length);
        BitConverter.TryWriteBytes(lengths[4..], input.Length);
        hash.AppendData(lengths);
        hash.AppendData(publicKey);
        hash.AppendData(input);
        hash.AppendData(signature);
        Span<byte> digest = stackalloc byte[32];
        hash.GetHashAndReset(digest);
        return BitConverter.ToUInt128(digest);
    }
}
