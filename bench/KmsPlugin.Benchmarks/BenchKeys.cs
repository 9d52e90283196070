using System.Security.Cryptography;
using KmsPlugin.Core.Envelope;
using KmsPlugin.Core.RootKeys;
using KmsPlugin.Core.Security;

namespace KmsPlugin.Benchmarks;

/// <summary>Key material made the way the plugin makes it: a local root key file and KEKs wrapped by it.</summary>
internal sealed class BenchKeys : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("kpbench").FullName;

    public BenchKeys()
    {
        RootKey = LocalRootKey.Open("bench", Path.Combine(_directory, "root.key"), create: true);
    }

    public LocalRootKey RootKey { get; }

    public string KeyId => RootKey.KeyId;

    /// <summary>A new KEK, wrapped by the root key as the envelope core does on rotation; the caller releases it.</summary>
    public LocalKek NewKek()
    {
        var secret = new SecretBuffer(LocalKek.KeyBytes);
        RandomNumberGenerator.Fill(secret.WritableSpan);
        var wrap = RootKey.WrapAsync(secret.Memory, WrappedKekAnnotation.WrapAssociatedData(KeyId), CancellationToken.None).GetAwaiter().GetResult();
        var annotation = WrappedKekAnnotation.Encode(wrap);
        return new LocalKek(secret, new KekCacheKey(KeyId, Hash256.Of(annotation)), annotation, DateTimeOffset.UtcNow);
    }

    public void Dispose()
    {
        RootKey.Dispose();
        Directory.Delete(_directory, recursive: true);
    }
}
