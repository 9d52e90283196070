using System.Security.Cryptography;
using System.Text;
using KmsPlugin.Core.RootKeys;

namespace KmsPlugin.Azure.Tests;

/// <summary>
/// Recognizes runs on wrapped KEKs read from etcd before anything is sent to the vault, so it must take any bytes:
/// random and mutated wraps (up to 4 KiB) under any key_id never throw, and a wrap is recognised exactly under the
/// key_id of the key version its header records. CI runs a bounded number of inputs; KMS_PLUGIN_FUZZ_ITERATIONS raises
/// it for a long local run.
/// </summary>
public sealed class WrapFuzzTests
{
    private static readonly byte[] Aad = "k8s-kms-plugin/test-aad"u8.ToArray();

    private static int Iterations(int ciDefault) =>
        int.TryParse(Environment.GetEnvironmentVariable("KMS_PLUGIN_FUZZ_ITERATIONS"), out var n) && n > 0 ? n : ciDefault;

    private static string KeyIdOf(AzureTestBed bed, string version) => KeyIds.Derive("azure", $"{bed.Vault.VaultUrl}/keys/{AzureTestBed.KeyName}/{version}");

    [Fact]
    public async Task Random_bytes_under_any_key_id_are_never_recognised_and_never_throw()
    {
        await using var bed = await AzureTestBed.StartAsync();
        bed.Vault.AddRsaVersion(AzureTestBed.KeyName);
        using var key = await bed.OpenAsync();
        var random = new Random(20261203);
        string[] keyIds = [key.KeyId, KeyIdOf(bed, "0123456789abcdef0123456789abcdef"), "azure-", "", new string('a', 4096)];
        for (var i = 0; i < Iterations(20_000); i++)
        {
            var wrapped = new byte[random.Next(0, 4097)];
            random.NextBytes(wrapped);
            if (wrapped.Length > 2 && random.Next(2) == 0)
            {
                wrapped[0] = AzureWrappedBlob.Format; // a plausible header with a random version field
                wrapped[1] = (byte)random.Next(1, 3);
            }

            Assert.False(key.Recognizes(keyIds[random.Next(keyIds.Length)], wrapped));
        }

        Assert.False(key.Recognizes(null!, [AzureWrappedBlob.Format]));
    }

    [Fact]
    public async Task Mutated_wraps_never_throw_and_are_recognised_only_under_the_key_id_of_the_version_they_record()
    {
        await using var bed = await AzureTestBed.StartAsync();
        var version = bed.Vault.AddRsaVersion(AzureTestBed.KeyName);
        using var key = await bed.OpenAsync();
        var genuine = await key.WrapAsync(RandomNumberGenerator.GetBytes(32), Aad, CancellationToken.None);
        var other = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));
        string[] keyIds = [key.KeyId, KeyIdOf(bed, other)];
        var random = new Random(20261204);
        var recognised = 0;
        for (var i = 0; i < Iterations(20_000); i++)
        {
            var wrapped = genuine.ToArray();
            switch (random.Next(5))
            {
                case 0:
                    wrapped[random.Next(wrapped.Length)] ^= (byte)(1 << random.Next(8));
                    break;
                case 1:
                    wrapped = wrapped[..random.Next(wrapped.Length)];
                    break;
                case 2:
                    wrapped[2] = (byte)random.Next(256); // the version length
                    break;
                case 3:
                    wrapped = [.. wrapped, .. RandomNumberGenerator.GetBytes(random.Next(1, 4096 - wrapped.Length))];
                    break;
                default:
                    // Another version recorded in the header (the genuine one's length, so the rest stays aligned).
                    Encoding.ASCII.GetBytes(random.Next(2) == 0 ? other : version).CopyTo(wrapped, 3);
                    break;
            }

            var expected = AzureWrappedBlob.TryParse(wrapped, out _, out var recorded, out _) ? KeyIdOf(bed, recorded) : null;
            foreach (var keyId in keyIds)
            {
                var result = key.Recognizes(keyId, wrapped);
                Assert.Equal(expected == keyId, result);
                recognised += result ? 1 : 0;
            }
        }

        Assert.True(recognised > 0);
    }
}
