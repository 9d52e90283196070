using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using KmsPlugin.Core.RootKeys;
using KmsPlugin.TestSupport;

namespace KmsPlugin.Vault.Tests;

/// <summary>
/// Recognizes runs on wrapped KEKs read from etcd before anything is sent to Vault, so it must take any bytes: random
/// and mutated wraps (up to 4 KiB) under any key_id never throw, and a wrap is recognised exactly under the key_id of
/// the version its <c>vault:vN:</c> prefix names. CI runs a bounded number of inputs; KMS_PLUGIN_FUZZ_ITERATIONS
/// raises it for a long local run.
/// </summary>
public sealed class VaultWrapFuzzTests : IAsyncLifetime, IDisposable
{
    private readonly TempDirectory _dir = new();
    private FakeVault _vault = null!;
    private VaultTransitRootKeyOptions _options = null!;
    private VaultTransitRootKey _key = null!;

    public async Task InitializeAsync()
    {
        _vault = await FakeVault.StartAsync();
        _vault.CreateKey();
        _options = VaultTestOptions.Kubernetes(_vault, _dir);
        _key = await VaultTransitRootKey.OpenAsync(_options, CancellationToken.None);
    }

    public async Task DisposeAsync()
    {
        _key.Dispose();
        await _vault.DisposeAsync();
    }

    public void Dispose() => _dir.Dispose();

    private static int Iterations(int ciDefault) =>
        int.TryParse(Environment.GetEnvironmentVariable("KMS_PLUGIN_FUZZ_ITERATIONS"), out var n) && n > 0 ? n : ciDefault;

    private string KeyIdOf(int version) => KeyIds.Derive("vault", VaultTransitRootKey.Identity(_options, version));

    [Fact]
    public void Random_bytes_under_any_key_id_are_never_recognised_and_never_throw()
    {
        var random = new Random(20261201);
        string[] keyIds = [_key.KeyId, KeyIdOf(2), "vault-", "", "aws-0123456789abcdef0123456789abcdef", new string('v', 4096)];
        for (var i = 0; i < Iterations(20_000); i++)
        {
            var wrapped = new byte[random.Next(0, 4097)];
            random.NextBytes(wrapped);
            if (wrapped.Length > 0 && random.Next(2) == 0)
            {
                wrapped[0] = VaultCiphertext.TransitAeadV1;
            }

            Assert.False(_key.Recognizes(keyIds[random.Next(keyIds.Length)], wrapped));
        }

        Assert.False(_key.Recognizes(null!, [VaultCiphertext.TransitAeadV1]));
    }

    [Fact]
    public async Task Mutated_wraps_never_throw_and_are_recognised_only_under_the_key_id_of_the_version_they_name()
    {
        var genuine = await _key.WrapAsync(RandomNumberGenerator.GetBytes(32), VaultTestOptions.Aad(), CancellationToken.None);
        var random = new Random(20261202);
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
                    // Another version number, possibly out of range or with leading zeros.
                    var version = random.Next(3) switch
                    {
                        0 => random.Next(1, 10).ToString(CultureInfo.InvariantCulture),
                        1 => "0" + random.Next(0, 100).ToString(CultureInfo.InvariantCulture),
                        _ => random.NextInt64(1, long.MaxValue).ToString(CultureInfo.InvariantCulture),
                    };
                    wrapped = [VaultCiphertext.TransitAeadV1, .. Encoding.ASCII.GetBytes($"vault:v{version}:"), .. wrapped.AsSpan(1 + "vault:v1:".Length)];
                    break;
            }

            var expected = VaultCiphertext.TryParse(wrapped, out _, out var named) ? KeyIdOf(named) : null;
            foreach (var keyId in new[] { _key.KeyId, KeyIdOf(2), KeyIdOf(7) })
            {
                var result = _key.Recognizes(keyId, wrapped);
                Assert.Equal(expected == keyId, result);
                recognised += result ? 1 : 0;
            }
        }

        Assert.True(recognised > 0); // the generator does produce wraps of other versions, not only garbage
    }
}
