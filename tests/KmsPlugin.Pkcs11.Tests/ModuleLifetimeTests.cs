using KmsPlugin.Core.Errors;
using KmsPlugin.TestSupport;

namespace KmsPlugin.Pkcs11.Tests;

/// <summary>Runs alone (no other test holds the module), so it can watch C_Initialize/C_Finalize happen.</summary>
[CollectionDefinition(nameof(ModuleLifetimeTests), DisableParallelization = true)]
public sealed class ModuleLifetimeCollection;

[Collection(nameof(ModuleLifetimeTests))]
public sealed class ModuleLifetimeTests
{
    [Fact]
    public async Task Instances_share_one_module_which_is_finalised_after_the_last_dispose_and_can_be_loaded_again()
    {
        var options = TestOptions.For(SoftHsmToken.Shared);
        Assert.False(Pkcs11ModuleRegistry.IsLoaded(options.Library));

        var first = Pkcs11RootKey.Open(options);
        var second = Pkcs11RootKey.Open(options with { KeyLabel = "kek2" });
        Assert.True(Pkcs11ModuleRegistry.IsLoaded(options.Library));

        first.Dispose();
        Assert.True(Pkcs11ModuleRegistry.IsLoaded(options.Library));
        var blob = await second.WrapAsync(TestOptions.Kek(), ReadOnlyMemory<byte>.Empty, CancellationToken.None); // still logged in
        second.Dispose();
        Assert.False(Pkcs11ModuleRegistry.IsLoaded(options.Library));

        // C_Initialize again after C_Finalize, with a fresh login.
        using var third = Pkcs11RootKey.Open(options with { KeyLabel = "kek2" });
        using var unwrapped = await third.UnwrapAsync(blob, ReadOnlyMemory<byte>.Empty, CancellationToken.None);
        Assert.Equal(TestOptions.Kek(), unwrapped.Span.ToArray());
    }

    [Fact]
    public void The_symlink_and_its_target_are_one_module()
    {
        var options = TestOptions.For(SoftHsmToken.Shared);
        var target = new FileInfo(options.Library).ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? options.Library;

        using var viaLink = Pkcs11RootKey.Open(options);
        Assert.True(Pkcs11ModuleRegistry.IsLoaded(target));
        using var viaTarget = Pkcs11RootKey.Open(options with { Library = target });

        Assert.Equal(viaLink.KeyId, viaTarget.KeyId);
    }

    [Fact]
    public void A_failed_open_leaves_no_module_loaded()
    {
        var options = TestOptions.For(SoftHsmToken.Shared);

        Assert.Throws<KmsPluginException>(() => Pkcs11RootKey.Open(options with { TokenLabel = "absent" }));
        Assert.Throws<KmsPluginException>(() => Pkcs11RootKey.Open(options with { KeyLabel = "absent" }));

        Assert.False(Pkcs11ModuleRegistry.IsLoaded(options.Library));
    }
}
