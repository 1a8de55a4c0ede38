using ManaSync.Web.Auth;
using Xunit;

namespace ManaSync.Core.Tests.Auth;

public sealed class VerifiedSignaturesTests
{
    private static readonly byte[] Key = [1, 2, 3], Input = [4, 5, 6], Signature = [7, 8, 9];

    [Fact]
    public void A_signature_that_verified_is_not_verified_again()
    {
        var memo = new VerifiedSignatures();
        var calls = 0;

        Assert.True(memo.Verify(Key, Input, Signature, () => ++calls > 0));
        Assert.True(memo.Verify(Key, Input, Signature, () => ++calls > 0));
        Assert.Equal(1, calls);
    }

    [Fact]
    public void A_signature_that_failed_is_checked_every_time()
    {
        var memo = new VerifiedSignatures();
        var calls = 0;

        Assert.False(memo.Verify(Key, Input, Signature, () => ++calls < 0));
        Assert.False(memo.Verify(Key, Input, Signature, () => ++calls < 0));
        Assert.Equal(2, calls);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    public void Another_key_input_or_signature_is_verified_on_its_own(int changed)
    {
        var memo = new VerifiedSignatures();
        memo.Verify(Key, Input, Signature, () => true);
        var parts = new[] { Key, Input, Signature };
        parts[changed] = [.. parts[changed], 0];

        Assert.False(memo.Verify(parts[0], parts[1], parts[2], () => false));
    }

    [Fact]
    public void Moving_bytes_between_input_and_signature_makes_another_entry()
    {
        var memo = new VerifiedSignatures();
        memo.Verify(Key, [4, 5], [6, 7, 8, 9], () => true);

        Assert.False(memo.Verify(Key, [4, 5, 6], [7, 8, 9], () => false));
    }

    [Fact]
    public void It_never_holds_more_than_its_capacity()
    {
        var memo = new VerifiedSignatures(capacity: 3);
        for (byte i = 0; i < 10; i++) memo.Verify(Key, [i], Signature, () => true);

        Assert.InRange(memo.Count, 1, 3);
    }
}
