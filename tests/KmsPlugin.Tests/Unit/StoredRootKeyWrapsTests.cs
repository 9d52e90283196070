using KmsPlugin.Core.Envelope;

namespace KmsPlugin.Tests.Unit;

/// <summary>What <c>audit</c> hands to <c>IRootKey.Recognizes</c>: the wraps a stored value carries, found as Decrypt finds them.</summary>
public sealed class StoredRootKeyWrapsTests
{
    private static readonly byte[] Sealed = [SealedSeedFormat.Version1, 1, 2, 3];

    private static Dictionary<string, ReadOnlyMemory<byte>> Annotation(byte[] value) => new() { [WrappedKekAnnotation.Key] = value };

    [Fact]
    public void A_v1_annotation_gives_its_one_wrap_under_the_key_id_without_its_epoch()
    {
        var wraps = StoredRootKeyWraps.Of("vault-abc.e2", Sealed, Annotation(WrappedKekAnnotation.Encode([9, 8, 7])));

        var (keyId, wrap) = Assert.Single(wraps);
        Assert.Equal("vault-abc", keyId);
        Assert.Equal([9, 8, 7], wrap.ToArray());
    }

    [Fact]
    public void A_multi_wrap_annotation_gives_every_wrap_with_its_own_key_id()
    {
        var value = WrappedKekAnnotation.EncodeMany([new("primary", [1, 1]), new("escrow", [2, 2, 2])]);

        var wraps = StoredRootKeyWraps.Of("primary", Sealed, Annotation(value));

        Assert.Equal(["primary", "escrow"], wraps.Select(w => w.Key));
        Assert.Equal([2, 2, 2], wraps[1].Value.ToArray());
    }

    [Fact]
    public void A_direct_wrap_ciphertext_gives_the_wrap_it_carries()
    {
        var ciphertext = DirectSeedFormat.Encode([5, 6]);

        var (keyId, wrap) = Assert.Single(StoredRootKeyWraps.Of("gcp-xyz", ciphertext, new Dictionary<string, ReadOnlyMemory<byte>>()));

        Assert.Equal("gcp-xyz", keyId);
        Assert.Equal([5, 6], wrap.ToArray());
    }

    [Theory]
    [InlineData(new byte[] { })] // empty
    [InlineData(new byte[] { 0x7f, 1, 2 })] // unknown format version
    [InlineData(new byte[] { WrappedKekAnnotation.Version1 })] // no wrap
    [InlineData(new byte[] { 2, 5, 1 })] // a multi-wrap value cut short
    public void Malformed_or_missing_annotations_give_no_wraps_instead_of_throwing(byte[] value)
    {
        Assert.Empty(StoredRootKeyWraps.Of("k", Sealed, Annotation(value)));
        Assert.Empty(StoredRootKeyWraps.Of("k", Sealed, new Dictionary<string, ReadOnlyMemory<byte>>()));
        Assert.Empty(StoredRootKeyWraps.Of("k", Sealed, new Dictionary<string, ReadOnlyMemory<byte>> { ["other.example.com"] = value }));
    }
}
