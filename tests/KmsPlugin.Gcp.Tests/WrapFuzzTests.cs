using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using KmsPlugin.Core.RootKeys;
using KmsPlugin.Gcp.Tests.Fakes;

namespace KmsPlugin.Gcp.Tests;

/// <summary>
/// Recognizes runs on wrapped KEKs read from etcd before anything is sent to Cloud KMS, so it must take any bytes:
/// random and mutated wraps (up to 4 KiB) under any key_id never throw, and a wrap is recognised exactly under the
/// key_id of the CryptoKeyVersion its header records. CI runs a bounded number of inputs; KMS_PLUGIN_FUZZ_ITERATIONS
/// raises it for a long local run.
/// </summary>
public sealed class WrapFuzzTests
{
    private static readonly byte[] Aad = "k8s-kms-plugin/test-aad"u8.ToArray();

    private static int Iterations(int ciDefault) =>
        int.TryParse(Environment.GetEnvironmentVariable("KMS_PLUGIN_FUZZ_ITERATIONS"), out var n) && n > 0 ? n : ciDefault;

    private static string KeyIdOf(string version) => KeyIds.Derive("gcp", $"{FakeCloudKms.CryptoKey}/cryptoKeyVersions/{version}");

    [Fact]
    public async Task Random_bytes_never_throw_and_are_recognised_only_when_they_happen_to_record_the_key_ids_version()
    {
        await using var bed = await GcpTestBed.StartAsync();
        bed.Kms.AddVersion();
        using var key = await bed.OpenAsync();
        var random = new Random(20261205);
        string[] keyIds = [key.KeyId, KeyIdOf("2"), "gcp-", "", new string('g', 4096)];
        for (var i = 0; i < Iterations(20_000); i++)
        {
            var wrapped = new byte[random.Next(0, 4097)];
            random.NextBytes(wrapped);
            if (wrapped.Length > 2 && random.Next(2) == 0)
            {
                wrapped[0] = GcpWrappedBlob.Format; // a plausible header with a random version field
                wrapped[1] = (byte)random.Next(0, 21);
            }

            var keyId = keyIds[random.Next(keyIds.Length)];
            var expected = GcpWrappedBlob.TryParse(wrapped, out var recorded, out _) && KeyIdOf(recorded) == keyId;
            Assert.Equal(expected, key.Recognizes(keyId, wrapped));
        }

        Assert.False(key.Recognizes(null!, [GcpWrappedBlob.Format, 1, (byte)'1', 0]));
    }

    [Fact]
    public async Task Mutated_wraps_never_throw_and_are_recognised_only_under_the_key_id_of_the_version_they_record()
    {
        await using var bed = await GcpTestBed.StartAsync();
        bed.Kms.AddVersion();
        using var key = await bed.OpenAsync();
        var genuine = await key.WrapAsync(RandomNumberGenerator.GetBytes(32), Aad, CancellationToken.None);
        var ciphertext = genuine.AsSpan(3).ToArray(); // after format, length 1, "1"
        string[] keyIds = [key.KeyId, KeyIdOf("2"), KeyIdOf("17")];
        var random = new Random(20261206);
        var recognised = 0;
        for (var i = 0; i < Iterations(20_000); i++)
        {
            var wrapped = genuine.ToArray();
            switch (random.Next(4))
            {
                case 0:
                    wrapped[random.Next(wrapped.Length)] ^= (byte)(1 << random.Next(8));
                    break;
                case 1:
                    wrapped = wrapped[..random.Next(wrapped.Length)];
                    break;
                case 2:
                    wrapped = [.. wrapped, .. RandomNumberGenerator.GetBytes(random.Next(1, 4096 - wrapped.Length))];
                    break;
                default:
                    var version = random.Next(3) switch
                    {
                        0 => random.Next(1, 20).ToString(CultureInfo.InvariantCulture),
                        1 => "0" + random.Next(0, 100).ToString(CultureInfo.InvariantCulture),
                        _ => random.NextInt64(0, long.MaxValue).ToString(CultureInfo.InvariantCulture) + random.Next(0, 10).ToString(CultureInfo.InvariantCulture),
                    };
                    var digits = Encoding.ASCII.GetBytes(version);
                    wrapped = [GcpWrappedBlob.Format, (byte)digits.Length, .. digits, .. ciphertext];
                    break;
            }

            var expected = GcpWrappedBlob.TryParse(wrapped, out var recorded, out _) ? KeyIdOf(recorded) : null;
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
