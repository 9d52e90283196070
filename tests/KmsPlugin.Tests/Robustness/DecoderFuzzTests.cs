using System.Security.Cryptography;
using KmsPlugin.Configuration;
using KmsPlugin.Core.Envelope;
using KmsPlugin.Core.Errors;
using KmsPlugin.Core.RootKeys;
using KmsPlugin.Core.Security;
using KmsPlugin.TestSupport;
using Microsoft.Extensions.Logging.Abstractions;

namespace KmsPlugin.Tests.Robustness;

/// <summary>
/// Property-based fuzzing of every decoder the plugin exposes to the outside: the sealed ciphertext, the annotations,
/// the wrapped-KEK blob (through the root key) and the configuration. Properties: no exception other than the typed
/// ones, no hang, and never a plaintext other than the original. CI runs a bounded number of inputs; set
/// KMS_PLUGIN_FUZZ_ITERATIONS (e.g. 1000000) for a long local run.
/// </summary>
public sealed class DecoderFuzzTests
{
    private static int Iterations(int ciDefault) =>
        int.TryParse(Environment.GetEnvironmentVariable("KMS_PLUGIN_FUZZ_ITERATIONS"), out var n) && n > 0 ? n : ciDefault;

    [Fact]
    public async Task Mutated_decrypt_inputs_only_ever_fail_with_typed_errors_or_return_the_original_seed()
    {
        using var dir = new TempDirectory();
        using var root = LocalRootKey.Open("dev", dir.FilePath("root.key"), create: true);
        var counting = new CountingRootKey(root);
        using var envelope = new EnvelopeService(new RootKeyRing([counting]), new EnvelopeOptions(), TimeProvider.System, CsprngRandomSource.Instance,
            NullLogger.Instance);
        var seed = RandomNumberGenerator.GetBytes(32);
        var good = await envelope.EncryptAsync(seed, CancellationToken.None);
        var goodAnnotation = good.Annotations[0].Value;

        var iterations = Iterations(200_000);
        var random = new Random(20261128);
        var outcomes = new Dictionary<string, int>();
        for (var i = 0; i < iterations; i++)
        {
            var ciphertext = (byte[])good.Ciphertext.Clone();
            var annotation = (byte[])goodAnnotation.Clone();
            var keyId = good.KeyId;
            var annotationKey = "kek.kmsplugin.io";
            switch (random.Next(7))
            {
                case 0:
                    ciphertext[random.Next(ciphertext.Length)] ^= (byte)(1 << random.Next(8));
                    break;
                case 1:
                    ciphertext = ciphertext[..random.Next(ciphertext.Length)];
                    break;
                case 2:
                    annotation[random.Next(annotation.Length)] ^= (byte)(1 << random.Next(8));
                    break;
                case 3:
                    annotation = annotation[..random.Next(annotation.Length)];
                    break;
                case 4:
                    ciphertext = new byte[random.Next(0, 1100)];
                    random.NextBytes(ciphertext);
                    if (ciphertext.Length > 0 && random.Next(2) == 0)
                    {
                        ciphertext[0] = SealedSeedFormat.Version1;
                    }

                    break;
                case 5:
                    // A forged but self-consistent pair: a random "wrapped KEK" whose hash the ciphertext names.
                    annotation = new byte[random.Next(2, 200)];
                    random.NextBytes(annotation);
                    annotation[0] = WrappedKekAnnotation.Version1;
                    SHA256.HashData(annotation).AsSpan(0, 16).CopyTo(ciphertext.AsSpan(1));
                    break;
                default:
                    annotationKey = random.Next(2) == 0 ? "kek.kmsplugin.io." : "other.example.com";
                    break;
            }

            try
            {
                var plaintext = await envelope.DecryptAsync(ciphertext, keyId, [new(annotationKey, annotation)], CancellationToken.None);
                Assert.Equal(seed, plaintext);
                outcomes["ok"] = outcomes.GetValueOrDefault("ok") + 1;
            }
            catch (KmsPluginException e)
            {
                Assert.True(e.Kind is KmsErrorKind.InvalidRequest or KmsErrorKind.Corruption, $"unexpected {e.Kind}: {e.Message}");
                outcomes[e.Kind.ToString()] = outcomes.GetValueOrDefault(e.Kind.ToString()) + 1;
            }
        }

        Assert.Equal(iterations, outcomes.Values.Sum());
        Assert.True(outcomes.GetValueOrDefault("InvalidRequest") > 0 && outcomes.GetValueOrDefault("Corruption") > 0);

        // Only forged pairs that pass every local check reach the root key, and none of them is ever cached.
        Assert.True(counting.Unwraps <= outcomes.GetValueOrDefault("Corruption"));
        Assert.Equal(1, envelope.CacheStatistics.Size);
    }

    [Fact]
    public void Mutated_configurations_only_ever_fail_with_a_configuration_error_naming_a_field()
    {
        var baseline = File.ReadAllText(Path.Combine(RepositoryRoot.Path, "docs", "kms-plugin.example.yaml"));
        var alphabet = ":{}[]-, \n\t#'\"&*!|>%@`0123456789abcxyz.\\/";
        var iterations = Iterations(20_000);
        var random = new Random(42);
        var parsed = 0;
        for (var i = 0; i < iterations; i++)
        {
            var chars = baseline.ToCharArray().ToList();
            for (var m = random.Next(1, 6); m > 0; m--)
            {
                var at = random.Next(chars.Count);
                switch (random.Next(3))
                {
                    case 0:
                        chars[at] = alphabet[random.Next(alphabet.Length)];
                        break;
                    case 1:
                        chars.RemoveAt(at);
                        break;
                    default:
                        chars.Insert(at, alphabet[random.Next(alphabet.Length)]);
                        break;
                }
            }

            try
            {
                ConfigLoader.Parse(new string([.. chars]), "/etc/kms-plugin");
                parsed++;
            }
            catch (ConfigException e)
            {
                Assert.False(string.IsNullOrWhiteSpace(e.Field), e.Message);
            }
        }

        Assert.True(parsed < iterations);
    }

    /// <summary>Counts unwraps reaching the real root key.</summary>
    private sealed class CountingRootKey(IRootKey inner) : IRootKey
    {
        private int _unwraps;

        public int Unwraps => Volatile.Read(ref _unwraps);

        public string Name => inner.Name;

        public string Provider => inner.Provider;

        public string KeyId => inner.KeyId;

        public Task<byte[]> WrapAsync(ReadOnlyMemory<byte> kek, ReadOnlyMemory<byte> associatedData, CancellationToken cancellationToken) =>
            inner.WrapAsync(kek, associatedData, cancellationToken);

        public Task<SecretBuffer> UnwrapAsync(ReadOnlyMemory<byte> wrapped, ReadOnlyMemory<byte> associatedData, CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref _unwraps);
            return inner.UnwrapAsync(wrapped, associatedData, cancellationToken);
        }

        public void Dispose()
        {
        }
    }
}
