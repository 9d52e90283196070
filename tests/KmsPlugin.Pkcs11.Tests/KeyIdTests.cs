using System.Text;
using KmsPlugin.Core.Errors;
using KmsPlugin.TestSupport;

namespace KmsPlugin.Pkcs11.Tests;

/// <summary>key_id must be the same on every node configured with the same key and differ between keys.</summary>
public sealed class KeyIdTests
{
    private static readonly byte[] Aad = Encoding.UTF8.GetBytes("aad");

    [Fact]
    public async Task Two_instances_on_the_same_key_share_key_id_and_unwrap_each_others_blobs()
    {
        using var first = Pkcs11RootKey.Open(TestOptions.For(SoftHsmToken.Shared, "node-a"));
        using var second = Pkcs11RootKey.Open(TestOptions.For(SoftHsmToken.Shared, "node-b") with { SessionPoolSize = 1 });
        var kek = TestOptions.Kek();

        var fromFirst = await first.WrapAsync(kek, Aad, CancellationToken.None);
        var fromSecond = await second.WrapAsync(kek, Aad, CancellationToken.None);
        using var a = await second.UnwrapAsync(fromFirst, Aad, CancellationToken.None);
        using var b = await first.UnwrapAsync(fromSecond, Aad, CancellationToken.None);

        Assert.Equal(first.KeyId, second.KeyId);
        Assert.Equal(kek, a.Span.ToArray());
        Assert.Equal(kek, b.Span.ToArray());
    }

    [Fact]
    public async Task A_different_key_label_gives_a_different_key_id_and_cannot_unwrap()
    {
        using var kek1 = Pkcs11RootKey.Open(TestOptions.For(SoftHsmToken.Shared));
        using var kek2 = Pkcs11RootKey.Open(TestOptions.For(SoftHsmToken.Shared) with { KeyLabel = "kek2" });

        Assert.NotEqual(kek1.KeyId, kek2.KeyId);
        var blob = await kek1.WrapAsync(TestOptions.Kek(), Aad, CancellationToken.None);
        var error = await Assert.ThrowsAsync<KmsPluginException>(() => kek2.UnwrapAsync(blob, Aad, CancellationToken.None));
        Assert.Equal(KmsErrorKind.Corruption, error.Kind);
    }

    [Fact]
    public void Key_id_is_an_opaque_provider_prefixed_hash_that_does_not_reveal_the_labels()
    {
        using var rootKey = Pkcs11RootKey.Open(TestOptions.For(SoftHsmToken.Shared));

        Assert.Matches("^pkcs11-[0-9a-f]{32}$", rootKey.KeyId);
        Assert.DoesNotContain("kek1", rootKey.KeyId, StringComparison.Ordinal);
        Assert.DoesNotContain("kms", rootKey.KeyId[7..], StringComparison.Ordinal);
    }

    [Fact]
    public void Key_id_does_not_depend_on_node_local_settings()
    {
        // Library path spelling (symlink vs. target), PIN file, pool size and name differ between nodes; the key does not.
        var options = TestOptions.For(SoftHsmToken.Shared);
        using var temp = new TempDirectory();
        var pinCopy = TestOptions.WritePinFile(temp, File.ReadAllText(SoftHsmToken.Shared.PinFile) + "\n");
        var resolvedLibrary = new FileInfo(options.Library).ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? options.Library;
        using var first = Pkcs11RootKey.Open(options);
        using var second = Pkcs11RootKey.Open(options with { Name = "other", Library = resolvedLibrary, PinFile = pinCopy, SessionPoolSize = 9 });

        Assert.Equal(first.KeyId, second.KeyId);
    }

    [Fact]
    public void Key_id_hex_is_case_insensitive()
    {
        var options = TestOptions.For(SoftHsmToken.Shared) with { KeyLabel = null };

        Assert.Equal(Pkcs11KeyIdentity.KeyIdFor(options with { KeyId = "0a" }), Pkcs11KeyIdentity.KeyIdFor(options with { KeyId = "0A" }));
        Assert.Equal(Pkcs11KeyIdentity.KeyIdFor(options with { KeyId = "0a" }), Pkcs11KeyIdentity.KeyIdFor(options with { KeyId = "0x0A" }));
    }

    [Fact]
    public void Identity_names_token_object_id_and_mechanism_with_escaped_values()
    {
        var options = TestOptions.For(SoftHsmToken.Shared) with { TokenLabel = "a;b", KeyLabel = "x=y", KeyId = "0A" };

        Assert.Equal("token=a%3Bb;object=x%3Dy;id=0a;mech=aes-gcm", Pkcs11KeyIdentity.Describe(options));
        Assert.Equal("token=kms;object=kek1;mech=aes-gcm", Pkcs11KeyIdentity.Describe(TestOptions.For(SoftHsmToken.Shared)));
    }

    [Fact]
    public async Task Selecting_the_key_by_label_by_id_or_by_both_finds_the_same_key()
    {
        using var byLabel = Pkcs11RootKey.Open(TestOptions.For(SoftHsmToken.Shared));
        using var byId = Pkcs11RootKey.Open(TestOptions.For(SoftHsmToken.Shared) with { KeyLabel = null, KeyId = "01" });
        using var byBoth = Pkcs11RootKey.Open(TestOptions.For(SoftHsmToken.Shared) with { KeyId = "01" });
        var kek = TestOptions.Kek();

        var blob = await byLabel.WrapAsync(kek, Aad, CancellationToken.None);
        using var viaId = await byId.UnwrapAsync(blob, Aad, CancellationToken.None);
        using var viaBoth = await byBoth.UnwrapAsync(blob, Aad, CancellationToken.None);

        Assert.Equal(kek, viaId.Span.ToArray());
        Assert.Equal(kek, viaBoth.Span.ToArray());

        // Configuration, not the key, names the key_id: each node must select the key the same way.
        Assert.Equal(3, new[] { byLabel.KeyId, byId.KeyId, byBoth.KeyId }.Distinct().Count());
    }

    [Fact]
    public async Task A_key_added_to_the_token_later_is_usable_without_reloading_the_module()
    {
        var label = "late-" + Guid.NewGuid().ToString("N")[..8];
        using var existing = Pkcs11RootKey.Open(TestOptions.For(SoftHsmToken.Shared)); // keeps the module initialised
        SoftHsmToken.Shared.AddKey(label, "7a");

        using var added = Pkcs11RootKey.Open(TestOptions.For(SoftHsmToken.Shared) with { KeyLabel = label });
        var blob = await added.WrapAsync(TestOptions.Kek(), Aad, CancellationToken.None);
        using var unwrapped = await added.UnwrapAsync(blob, Aad, CancellationToken.None);

        Assert.NotEqual(existing.KeyId, added.KeyId);
        Assert.Equal(TestOptions.Kek(), unwrapped.Span.ToArray());
    }
}
