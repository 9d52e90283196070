using System.Diagnostics.CodeAnalysis;
using System.Security.Cryptography;
using KmsPlugin.Core.Security;

namespace KmsPlugin.Core.Envelope;

/// <summary>
/// One local key-encryption key: 32 bytes from the OS CSPRNG, used with AES-256-GCM to seal the apiserver's seeds.
/// The key is shared by the current-KEK slot, the cache and in-flight requests, so its lifetime is reference
/// counted: the bytes are zeroed when the last holder lets go, never while a seal or open is running.
/// </summary>
[SuppressMessage("Design", "CA1001", Justification = "Lifetime is reference counted (TryAcquire/Release), not IDisposable: the last Release zeroes and disposes.")]
internal sealed class LocalKek
{
    public const int KeyBytes = 32;
    public const int TagBytes = 16;

    private readonly SecretBuffer _key;
    private readonly AesGcm _aes;

    // AesGcm instances are not documented as thread-safe; the lock costs tens of nanoseconds next to a
    // ~200 µs gRPC round trip and keeps one OpenSSL context per KEK.
    private readonly Lock _aesLock = new();
    private readonly ReferenceCount _references = new();
    private long _seals;

    public LocalKek(SecretBuffer key, KekCacheKey cacheKey, byte[] wrappedBlob, DateTimeOffset createdAt)
    {
        ArgumentNullException.ThrowIfNull(key);
        if (key.Length != KeyBytes)
        {
            throw new ArgumentException($"a KEK is {KeyBytes} bytes", nameof(key));
        }

        _key = key;
        _aes = new AesGcm(key.Span, TagBytes);
        CacheKey = cacheKey;
        WrappedBlob = wrappedBlob;
        CreatedAt = createdAt;
    }

    public KekCacheKey CacheKey { get; }

    /// <summary>The annotation value: this KEK wrapped by the root key named by <see cref="KekCacheKey.KeyId"/>.</summary>
    public byte[] WrappedBlob { get; }

    public DateTimeOffset CreatedAt { get; }

    /// <summary>True when an additional-wrap root key could not wrap this KEK when it was made (it is replaced early).</summary>
    public bool MissingWraps { get; init; }

    public long Seals => Interlocked.Read(ref _seals);

    /// <summary>Counts one more seal under this KEK and returns the new count.</summary>
    public long CountSeal() => Interlocked.Increment(ref _seals);

    /// <summary>Takes a reference; false when the KEK has already been retired and zeroed.</summary>
    public bool TryAcquire() => _references.TryAcquire();

    /// <summary>Drops a reference; the last one zeroes the key.</summary>
    public void Release()
    {
        if (_references.Release())
        {
            lock (_aesLock)
            {
                _aes.Dispose();
                _key.Dispose();
            }
        }
    }

    public void Encrypt(ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> plaintext, Span<byte> ciphertext, Span<byte> tag, ReadOnlySpan<byte> associatedData)
    {
        lock (_aesLock)
        {
            _aes.Encrypt(nonce, plaintext, ciphertext, tag, associatedData);
        }
    }

    /// <exception cref="AuthenticationTagMismatchException">The ciphertext, tag or associated data was altered.</exception>
    public void Decrypt(ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> ciphertext, ReadOnlySpan<byte> tag, Span<byte> plaintext, ReadOnlySpan<byte> associatedData)
    {
        lock (_aesLock)
        {
            _aes.Decrypt(nonce, ciphertext, tag, plaintext, associatedData);
        }
    }
}
