using System.Security.Cryptography;
using KmsPlugin.Core.Envelope;
using KmsPlugin.Hosting;
using KmsPlugin.TestSupport;

namespace KmsPlugin.Tests.EndToEnd;

/// <summary><c>envelope.mode: direct</c> through the real socket, and a switch of mode across a restart that loses no data.</summary>
public sealed class DirectWrapModeEndToEndTests
{
    [Fact]
    public async Task Direct_mode_passes_the_apiservers_checks_and_calls_the_root_key_per_seed()
    {
        var counting = new FakeRootKey("counted");
        await using var plugin = await PluginHost.StartLocalAsync(dependencies: new ServerDependencies { DecorateRootKey = _ => counting },
            adjust: c => c with { EnvelopeMode = EnvelopeMode.Direct });
        await plugin.WaitForProbeAsync();
        await ApiserverEmulationTests.AssertApiserverConversationAsync(plugin.Apiserver);

        var (wraps, unwraps) = (counting.Wraps, counting.Unwraps);
        var stored = await plugin.Apiserver.EncryptAsync(RandomNumberGenerator.GetBytes(32));
        Assert.Empty(stored.Annotations);
        Assert.Equal(DirectSeedFormat.Version2, stored.Ciphertext[0]);
        await plugin.Apiserver.DecryptAsync(stored);
        await plugin.Apiserver.DecryptAsync(stored);
        Assert.Equal((wraps + 1, unwraps + 2), (counting.Wraps, counting.Unwraps));
    }

    [Fact]
    public async Task Data_written_in_one_mode_decrypts_after_a_restart_in_the_other()
    {
        using var directory = new TempDirectory();
        var seedA = RandomNumberGenerator.GetBytes(32);
        var seedB = RandomNumberGenerator.GetBytes(32);
        Protocol.V2.EncryptResponse direct;
        Protocol.V2.EncryptResponse sealedByKek;
        await using (var before = await PluginHost.StartLocalAsync(directory, adjust: c => c with { EnvelopeMode = EnvelopeMode.Direct }))
        {
            direct = await before.Apiserver.EncryptAsync(seedA);
        }

        await using (var kekMode = await PluginHost.StartLocalAsync(directory))
        {
            Assert.Equal(seedA, await kekMode.Apiserver.DecryptAsync(direct));
            sealedByKek = await kekMode.Apiserver.EncryptAsync(seedB);
        }

        await using var backToDirect = await PluginHost.StartLocalAsync(directory, adjust: c => c with { EnvelopeMode = EnvelopeMode.Direct });
        Assert.Equal(seedB, await backToDirect.Apiserver.DecryptAsync(sealedByKek));
        Assert.Equal(seedA, await backToDirect.Apiserver.DecryptAsync(direct));
    }
}
