using System.Security.Cryptography;
using BenchmarkDotNet.Attributes;
using KmsPlugin.Configuration;
using KmsPlugin.Configuration.Providers;
using KmsPlugin.Core.Envelope;
using KmsPlugin.Core.RootKeys;
using KmsPlugin.Core.Security;
using KmsPlugin.Hosting;
using KmsPlugin.TestSupport;

namespace KmsPlugin.Benchmarks;

/// <summary>
/// The PKCS#11 root key against a real SoftHSM2 token (TestSupport's SoftHsmToken; needs softhsm2 and opensc):
/// wrap and unwrap of a 32-byte KEK, opened through the provider registry as <c>provider: pkcs11</c> would be.
/// This is the cost of one KEK rotation or one cache miss with an HSM.
/// </summary>
[MemoryDiagnoser]
public class Pkcs11Benchmarks
{
    private IRootKey _rootKey = null!;
    private byte[] _kek = null!;
    private byte[] _associatedData = null!;
    private byte[] _wrapped = null!;

    [GlobalSetup]
    public void Setup()
    {
        var token = SoftHsmToken.Shared;
        _rootKey = RootKeyFactory.Create(new RootKeyConfig
        {
            Name = "hsm",
            Provider = "pkcs11",
            Settings = new Pkcs11RootKeyConfig(token.Library, token.TokenLabel, token.KeyLabel, null, token.PinFile, 4),
        }, CsprngRandomSource.Instance);
        _kek = RandomNumberGenerator.GetBytes(LocalKek.KeyBytes);
        _associatedData = WrappedKekAnnotation.WrapAssociatedData(_rootKey.KeyId);
        _wrapped = _rootKey.WrapAsync(_kek, _associatedData, CancellationToken.None).GetAwaiter().GetResult();
    }

    [GlobalCleanup]
    public void Cleanup() => _rootKey.Dispose();

    [Benchmark(Description = "PKCS#11 wrap (SoftHSM2)")]
    public Task<byte[]> Wrap() => _rootKey.WrapAsync(_kek, _associatedData, CancellationToken.None);

    [Benchmark(Description = "PKCS#11 unwrap (SoftHSM2)")]
    public async Task Unwrap()
    {
        using var secret = await _rootKey.UnwrapAsync(_wrapped, _associatedData, CancellationToken.None);
    }
}
