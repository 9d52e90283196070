using System.Security.Cryptography;
using BenchmarkDotNet.Attributes;
using KmsPlugin.Core.Envelope;
using KmsPlugin.Core.Protocol;
using KmsPlugin.Core.RootKeys;
using KmsPlugin.Core.Security;
using Microsoft.Extensions.Logging.Abstractions;

namespace KmsPlugin.Benchmarks;

/// <summary>
/// Request validation: the apiserver's rules for an Encrypt response (ApiserverRules, as the plugin checks its own
/// output per KEK and as <c>kms-plugin probe</c> checks a plugin), and the local pre-checks every Decrypt passes
/// before the cache or any remote call (key_id, size, format, annotation, KEK reference).
/// </summary>
[MemoryDiagnoser]
public class RequestValidationBenchmarks
{
    private BenchKeys _keys = null!;
    private EnvelopeService _envelope = null!;
    private EncryptResult _stored = null!;
    private KeyValuePair<string, ReadOnlyMemory<byte>>[] _annotations = null!;
    private KeyValuePair<string, int>[] _annotationSizes = null!;

    [GlobalSetup]
    public void Setup()
    {
        _keys = new BenchKeys();
        _envelope = new EnvelopeService(new RootKeyRing([_keys.RootKey]), new EnvelopeOptions(), TimeProvider.System, CsprngRandomSource.Instance,
            NullLogger.Instance);
        _stored = _envelope.EncryptAsync(RandomNumberGenerator.GetBytes(32), CancellationToken.None).GetAwaiter().GetResult();
        _annotations = [.. _stored.Annotations.Select(a => new KeyValuePair<string, ReadOnlyMemory<byte>>(a.Key, a.Value))];
        _annotationSizes = [.. _stored.Annotations.Select(a => new KeyValuePair<string, int>(a.Key, a.Value.Length))];
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _envelope.Dispose();
        _keys.Dispose();
    }

    [Benchmark(Description = "ApiserverRules: Encrypt response")]
    public bool ApiserverRulesOnEncryptResponse() =>
        (ApiserverRules.CheckCiphertext(_stored.Ciphertext) ?? ApiserverRules.CheckKeyId(_stored.KeyId) ?? ApiserverRules.CheckAnnotations(_annotationSizes)) is null;

    [Benchmark(Description = "Decrypt pre-checks")]
    public int DecryptPreChecks()
    {
        EnvelopeService.CheckKeyIdAndSize(_stored.Ciphertext, _stored.KeyId);
        return _envelope.CheckSealedRequest(_stored.Ciphertext, _stored.KeyId, _annotations).RootKeyWrap.Length;
    }
}
