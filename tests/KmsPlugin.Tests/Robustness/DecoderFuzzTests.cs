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

    [Theory]
    [InlineData(false)]
    [InlineData(true)] // the multi-wrap annotation (an additional-wrap root key configured)
    public async Task Mutated_decrypt_inputs_only_ever_fail_with_typed_errors_or_return_the_original_seed(bool multiWrap)
    {
        using var dir = new TempDirectory();
        using var root = LocalRootKey.Open("dev", dir.FilePath("root.key"), create: true);
        using var escrow = LocalRootKey.Open("escrow", dir.FilePath("escrow.key"), create: true);
        var counting = new CountingRootKey(root);
        var countingEscrow = new CountingRootKey(escrow);
        var ring = multiWrap
            ? new RootKeyRing([new RootKeyEntry(counting, RootKeyRole.Primary), new RootKeyEntry(countingEscrow, RootKeyRole.AdditionalWrap)], null)
            : new RootKeyRing([counting]);
        using var envelope = new EnvelopeService(ring, new EnvelopeOptions(), TimeProvider.System, CsprngRandomSource.Instance,
            NullLogger.Instance);
        var seed = RandomNumberGenerator.GetBytes(32);
        var good = await envelope.EncryptAsync(seed, CancellationToken.None);
        var goodAnnotation = good.Annotations[0].Value;
        Assert.Equal(multiWrap, WrappedKekAnnotation.IsMultiWrap(goodAnnotation));

        var iterations = Iterations(multiWrap ? 100_000 : 200_000);
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
                    if (multiWrap && random.Next(2) == 0)
                    {
                        // A forged multi-wrap value naming both configured keys, with random wraps.
                        annotation = WrappedKekAnnotation.EncodeMany([new(root.KeyId, RandomNumberGenerator.GetBytes(random.Next(1, 100))),
                            new(escrow.KeyId, RandomNumberGenerator.GetBytes(random.Next(1, 100)))]);
                    }

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
                // A mutated key_id inside a multi-wrap value names no configured key: UnknownKeyId, still a typed refusal.
                Assert.True(e.Kind is KmsErrorKind.InvalidRequest or KmsErrorKind.Corruption || (multiWrap && e.Kind == KmsErrorKind.UnknownKeyId),
                    $"unexpected {e.Kind}: {e.Message}");
                outcomes[e.Kind.ToString()] = outcomes.GetValueOrDefault(e.Kind.ToString()) + 1;
            }
        }

        Assert.Equal(iterations, outcomes.Values.Sum());
        Assert.True(outcomes.GetValueOrDefault("InvalidRequest") > 0 && outcomes.GetValueOrDefault("Corruption") > 0);

        // Only forged pairs that pass every local check reach a root key (each configured key at most once per
        // forged value), and none of them is ever cached.
        Assert.True(counting.Unwraps + countingEscrow.Unwraps <= (multiWrap ? 2 : 1) * outcomes.GetValueOrDefault("Corruption"));
        Assert.Equal(1, envelope.CacheStatistics.Size);
    }

    /// <summary>
    /// The KMS v1 cipher (V1Beta1CipherFormat) through the whole v1 Decrypt path. Extra properties: whatever decodes
    /// re-encodes to exactly the same bytes (one encoding per value), and a v2 response repacked as a v1 cipher never opens.
    /// </summary>
    [Fact]
    public async Task Mutated_V1Beta1_ciphers_only_ever_fail_with_typed_errors_or_return_the_original_plain()
    {
        using var dir = new TempDirectory();
        using var root = LocalRootKey.Open("dev", dir.FilePath("root.key"), create: true);
        var counting = new CountingRootKey(root);
        using var envelope = new EnvelopeService(new RootKeyRing([counting]), new EnvelopeOptions(), TimeProvider.System, CsprngRandomSource.Instance,
            NullLogger.Instance);
        var v1 = new V1Beta1Envelope(envelope);
        var plain = RandomNumberGenerator.GetBytes(32);
        var good = await v1.EncryptAsync(plain, CancellationToken.None);
        var v2 = await envelope.EncryptAsync(RandomNumberGenerator.GetBytes(32), CancellationToken.None);
        var v2Annotations = v2.Annotations.ToList();

        var iterations = Iterations(100_000);
        var random = new Random(20261129);
        var outcomes = new Dictionary<string, int>();
        for (var i = 0; i < iterations; i++)
        {
            var cipher = (byte[])good.Clone();
            switch (random.Next(8))
            {
                case 0:
                    cipher[random.Next(cipher.Length)] ^= (byte)(1 << random.Next(8));
                    break;
                case 1:
                    cipher = cipher[..random.Next(cipher.Length)];
                    break;
                case 2:
                    cipher = [.. cipher, .. RandomBytes(random, random.Next(1, 8))];
                    break;
                case 3:
                    // a random length field or count: misaligns everything after it
                    var at = random.Next(cipher.Length - 1);
                    cipher[at] = (byte)random.Next(256);
                    cipher[at + 1] = (byte)random.Next(256);
                    break;
                case 4:
                    cipher = [V1Beta1CipherFormat.FormatByte, V1Beta1CipherFormat.Version1, .. RandomBytes(random, random.Next(0, 600))];
                    break;
                case 5:
                    // well-formed, with a random key_id, extra or missing annotations: only the envelope can refuse it
                    var decoded = V1Beta1CipherFormat.Decode(good);
                    var annotations = decoded.Annotations.Select(a => new KeyValuePair<string, byte[]>(a.Key, a.Value.ToArray())).ToList();
                    var keyId = random.Next(2) == 0 ? decoded.KeyId : "local-" + Convert.ToHexStringLower(RandomBytes(random, random.Next(1, 20)));
                    switch (random.Next(3))
                    {
                        case 0:
                            annotations.Clear();
                            break;
                        case 1:
                            annotations.Add(new("x" + random.Next(1000) + ".example.com", RandomBytes(random, random.Next(0, 40))));
                            break;
                    }

                    cipher = V1Beta1CipherFormat.Encode(new EncryptResult(decoded.Ciphertext.ToArray(), keyId, annotations));
                    break;
                case 6:
                    // a KMS v2 response of the same plugin repacked as a v1 cipher: opens to a seed without the v1 label
                    cipher = V1Beta1CipherFormat.Encode(new EncryptResult(v2.Ciphertext, v2.KeyId, v2Annotations));
                    break;
                default:
                    cipher = RandomBytes(random, random.Next(0, 300));
                    break;
            }

            try
            {
                var d = V1Beta1CipherFormat.Decode(cipher);
                Assert.Equal(cipher, V1Beta1CipherFormat.Encode(new EncryptResult(d.Ciphertext.ToArray(), d.KeyId,
                    d.Annotations.Select(a => new KeyValuePair<string, byte[]>(a.Key, a.Value.ToArray())).ToList())));
            }
            catch (KmsPluginException e)
            {
                Assert.Equal(KmsErrorKind.InvalidRequest, e.Kind);
            }

            try
            {
                Assert.Equal(plain, await v1.DecryptAsync(cipher, CancellationToken.None));
                outcomes["ok"] = outcomes.GetValueOrDefault("ok") + 1;
            }
            catch (KmsPluginException e)
            {
                Assert.True(e.Kind is KmsErrorKind.InvalidRequest or KmsErrorKind.Corruption or KmsErrorKind.UnknownKeyId, $"unexpected {e.Kind}: {e.Message}");
                outcomes[e.Kind.ToString()] = outcomes.GetValueOrDefault(e.Kind.ToString()) + 1;
            }
        }

        Assert.Equal(iterations, outcomes.Values.Sum());
        Assert.True(outcomes.GetValueOrDefault("InvalidRequest") > 0 && outcomes.GetValueOrDefault("Corruption") > 0
            && outcomes.GetValueOrDefault("UnknownKeyId") > 0, string.Join(", ", outcomes));

        // Nothing forged is ever cached: still the two KEK-sealed values' one KEK.
        Assert.Equal(1, envelope.CacheStatistics.Size);

        static byte[] RandomBytes(Random random, int length)
        {
            var bytes = new byte[length];
            random.NextBytes(bytes);
            return bytes;
        }
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
