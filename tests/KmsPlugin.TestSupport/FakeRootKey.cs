using System.Security.Cryptography;
using KmsPlugin.Core.Errors;
using KmsPlugin.Core.RootKeys;
using KmsPlugin.Core.Security;

namespace KmsPlugin.TestSupport;

/// <summary>
/// An in-memory root key (real AES-256-GCM, so tampering is detected) whose behaviour tests control: latency,
/// failures, a key_id that changes like a remotely rotated key version. It counts every call.
/// </summary>
public sealed class FakeRootKey : IRootKey
{
    private readonly byte[] _key = RandomNumberGenerator.GetBytes(32);
    private int _wraps;
    private int _unwraps;

    public FakeRootKey(string name = "fake", string? keyId = null)
    {
        Name = name;
        KeyId = keyId ?? KeyIds.Derive("fake", name);
    }

    public string Name { get; }

    public string Provider => "fake";

    /// <summary>Fixed for the key's life, like every root key's (a new version is a new key swapped into the ring).</summary>
    public string KeyId { get; }

    public TimeSpan Latency { get; set; }

    /// <summary>When set, every call fails with this error.</summary>
    public KmsPluginException? Failure { get; set; }

    public int Wraps => Volatile.Read(ref _wraps);

    public int Unwraps => Volatile.Read(ref _unwraps);

    public async Task<byte[]> WrapAsync(ReadOnlyMemory<byte> kek, ReadOnlyMemory<byte> associatedData, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _wraps);
        await Delay(cancellationToken);
        var blob = new byte[12 + kek.Length + 16];
        RandomNumberGenerator.Fill(blob.AsSpan(0, 12));
        using var aes = new AesGcm(_key, 16);
        aes.Encrypt(blob.AsSpan(0, 12), kek.Span, blob.AsSpan(12, kek.Length), blob.AsSpan(12 + kek.Length), associatedData.Span);
        return blob;
    }

    public async Task<SecretBuffer> UnwrapAsync(ReadOnlyMemory<byte> wrapped, ReadOnlyMemory<byte> associatedData, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _unwraps);
        await Delay(cancellationToken);
        if (wrapped.Length < 12 + 16 + 1)
        {
            throw KmsPluginException.Corrupt("fake: blob too short");
        }

        var plain = new SecretBuffer(wrapped.Length - 28);
        try
        {
            using var aes = new AesGcm(_key, 16);
            aes.Decrypt(wrapped.Span[..12], wrapped.Span[12..^16], wrapped.Span[^16..], plain.WritableSpan, associatedData.Span);
            return plain;
        }
        catch (CryptographicException e)
        {
            plain.Dispose();
            throw new KmsPluginException(KmsErrorKind.Corruption, "fake: wrapped KEK failed authentication", e);
        }
    }

    private async Task Delay(CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        if (Failure is { } failure)
        {
            throw failure;
        }

        if (Latency > TimeSpan.Zero)
        {
            await Task.Delay(Latency, cancellationToken);
        }
    }

    /// <summary>Nothing to release: tests share one fake across plugin instances to model restarts and second nodes
    /// (the plugin disposes its root keys on stop), and the key is throw-away test data.</summary>
    public void Dispose()
    {
    }
}
