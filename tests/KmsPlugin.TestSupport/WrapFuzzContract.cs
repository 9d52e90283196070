using System.Globalization;
using System.Security.Cryptography;
using KmsPlugin.Core.RootKeys;
using Xunit;

namespace KmsPlugin.TestSupport;

/// <summary>
/// <see cref="IRootKey.Recognizes"/> runs on wrapped KEKs read from etcd before anything is sent to the backend, so it
/// must take any bytes: random and mutated wraps (up to 4 KiB) under any key_id never throw, and a wrap is recognised
/// exactly under the key_id of the version its header records (the provider's own parser, <see cref="ParsedVersion"/>,
/// is the oracle for which header that is). CI runs a bounded number of inputs; KMS_PLUGIN_FUZZ_ITERATIONS raises it
/// for a long local run. A provider test class derives from this with its <typeparamref name="TBackend"/> and says
/// how its blob header looks.
/// </summary>
public abstract class WrapFuzzContract<TBackend> : VersionedKeyBackendTest<TBackend>
    where TBackend : IVersionedKeyBackend, new()
{
    private IVersionedRootKey? _key;

    /// <summary>The key under test, opened at the version the backend started with.</summary>
    protected IVersionedRootKey Key => _key ?? throw new InvalidOperationException("the key opens in InitializeAsync");

    /// <summary>Versions of the key other than <see cref="Key"/>'s that <see cref="MutateHeader"/> writes into headers (some of the time).</summary>
    protected abstract IReadOnlyList<string> OtherVersions { get; }

    /// <summary>
    /// Whether random bytes behind <see cref="DisguiseAsWrap"/> can, by chance, form a header recording one of the
    /// versions under test (a one-digit version can be hit; a 32-hex-digit one cannot). When false, no random input
    /// may be recognised at all.
    /// </summary>
    protected virtual bool RandomBytesMayRecordAVersion => false;

    public override async Task InitializeAsync()
    {
        await base.InitializeAsync();
        _key = await Backend.OpenAsync();
    }

    public override async Task DisposeAsync()
    {
        _key?.Dispose();
        await base.DisposeAsync();
    }

    /// <summary>The version the provider's parser reads from <paramref name="wrapped"/>'s header; null when it refuses the header.</summary>
    protected abstract string? ParsedVersion(byte[] wrapped);

    /// <summary>Gives random bytes the start of a wrap's header (its format byte, a plausible field) so the parser gets past its first check.</summary>
    protected abstract void DisguiseAsWrap(Random random, byte[] bytes);

    /// <summary>A copy of <paramref name="genuine"/> with a header field changed: another version (from <see cref="OtherVersions"/>, or out of range, or malformed).</summary>
    protected abstract byte[] MutateHeader(Random random, byte[] genuine);

    /// <summary>A version number as a mutated header may name it: a small one, one with a leading zero, or one past any integer type.</summary>
    protected static string RandomVersionNumber(Random random)
    {
        ArgumentNullException.ThrowIfNull(random);
        return random.Next(3) switch
        {
            0 => random.Next(1, 20).ToString(CultureInfo.InvariantCulture),
            1 => "0" + random.Next(0, 100).ToString(CultureInfo.InvariantCulture),
            _ => random.NextInt64(0, long.MaxValue).ToString(CultureInfo.InvariantCulture) + random.Next(0, 10).ToString(CultureInfo.InvariantCulture),
        };
    }

    private static int Iterations(int ciDefault) =>
        int.TryParse(Environment.GetEnvironmentVariable("KMS_PLUGIN_FUZZ_ITERATIONS"), out var n) && n > 0 ? n : ciDefault;

    private string? RecordedKeyId(byte[] wrapped) => ParsedVersion(wrapped) is { } version ? Backend.KeyIdOf(version) : null;

    [Fact]
    public async Task Random_bytes_under_any_key_id_never_throw_and_are_recognised_only_under_the_key_id_of_a_version_they_record()
    {
        var provider = Backend.Provider;
        string[] keyIds = [Key.KeyId, .. OtherVersions.Select(Backend.KeyIdOf), provider + "-", "", "aws-0123456789abcdef0123456789abcdef", new string(provider[0], 4096)];
        var random = new Random(20261201);
        for (var i = 0; i < Iterations(20_000); i++)
        {
            var wrapped = new byte[random.Next(0, 4097)];
            random.NextBytes(wrapped);
            if (random.Next(2) == 0)
            {
                DisguiseAsWrap(random, wrapped);
            }

            var keyId = keyIds[random.Next(keyIds.Length)];
            var result = Key.Recognizes(keyId, wrapped);
            Assert.Equal(RecordedKeyId(wrapped) == keyId, result);
            Assert.True(RandomBytesMayRecordAVersion || !result);
        }

        // No key_id at all: never recognised, whatever the bytes (a genuine wrap and each of its prefixes included).
        var genuine = await Key.WrapAsync(NewKek(), Aad, CancellationToken.None);
        foreach (var length in Enumerable.Range(0, Math.Min(64, genuine.Length)).Append(genuine.Length))
        {
            Assert.False(Key.Recognizes(null!, genuine.AsSpan(0, length)));
        }
    }

    [Fact]
    public async Task Mutated_wraps_never_throw_and_are_recognised_only_under_the_key_id_of_the_version_they_record()
    {
        var genuine = await Key.WrapAsync(NewKek(), Aad, CancellationToken.None);
        Assert.Equal(Key.KeyId, RecordedKeyId(genuine));
        string[] keyIds = [Key.KeyId, .. OtherVersions.Select(Backend.KeyIdOf)];
        var random = new Random(20261202);
        var recognisedAsOtherVersion = 0;
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
                    wrapped = MutateHeader(random, wrapped);
                    break;
            }

            var expected = RecordedKeyId(wrapped);
            foreach (var keyId in keyIds)
            {
                var result = Key.Recognizes(keyId, wrapped);
                Assert.Equal(expected == keyId, result);
                recognisedAsOtherVersion += result && keyId != Key.KeyId ? 1 : 0;
            }
        }

        // The generator does produce wraps of the other versions, not only garbage and the genuine header.
        Assert.True(recognisedAsOtherVersion > 0);
    }
}
