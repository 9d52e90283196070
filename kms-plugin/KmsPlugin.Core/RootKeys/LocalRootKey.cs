using System.Security.Cryptography;
using System.Text;
using KmsPlugin.Core.Errors;
using KmsPlugin.Core.Security;

namespace KmsPlugin.Core.RootKeys;

/// <summary>
/// A root key in a local file: 32 random bytes, mode 0600. FOR DEVELOPMENT ONLY — the key sits on the node's disk,
/// so it proves nothing to an auditor. It exists so <c>serve --dev</c> works without an HSM or a cloud.
/// Wrap is AES-256-GCM (NIST SP 800-38D) with a random 96-bit nonce: blob = nonce(12) ‖ ciphertext ‖ tag(16).
/// </summary>
public sealed class LocalRootKey : IRootKey
{
    public const int KeyBytes = 32;
    private const int NonceBytes = 12;
    private const int TagBytes = 16;
    private static readonly byte[] IdentityLabel = Encoding.ASCII.GetBytes("k8s-kms-plugin/local-root-key-identity/v1");

    private readonly SecretBuffer _key;
    private readonly AesGcm _aes;
    private readonly Lock _aesLock = new();
    private readonly IRandomSource _random;

    private LocalRootKey(string name, SecretBuffer key, IRandomSource random)
    {
        Name = name;
        _key = key;
        _random = random;
        _aes = new AesGcm(key.Span, TagBytes);

        // The identity is an HMAC of the key, so nodes sharing the file report the same key_id and different
        // files report different ones, without the key_id revealing anything about the key.
        Span<byte> identity = stackalloc byte[HMACSHA256.HashSizeInBytes];
        HMACSHA256.HashData(key.Span, IdentityLabel, identity);
        KeyId = KeyIds.Derive(Provider, Convert.ToHexStringLower(identity));
    }

    public string Name { get; }

    public string Provider => "local";

    public string KeyId { get; }

    /// <summary>Loads the key file, creating it (0600, from the OS CSPRNG) when <paramref name="create"/> is set and it does not exist.</summary>
    public static LocalRootKey Open(string name, string path, bool create, IRandomSource? random = null)
    {
        random ??= CsprngRandomSource.Instance;
        if (create && !File.Exists(path))
        {
            CreateKeyFile(path, random);
        }

        return new LocalRootKey(name, ReadKeyFile(path), random);
    }

    private static void CreateKeyFile(string path, IRandomSource random)
    {
        using var key = new SecretBuffer(KeyBytes);
        random.Fill(key.WritableSpan);
        try
        {
            // CreateNew + explicit mode: the file never exists with wider permissions, and a concurrent creator loses cleanly.
            using var stream = new FileStream(path, new FileStreamOptions
            {
                Mode = FileMode.CreateNew,
                Access = FileAccess.Write,
                Share = FileShare.None,
                UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
            });
            stream.Write(key.Span);
            stream.Flush(flushToDisk: true);
        }
        catch (IOException) when (File.Exists(path))
        {
            // Another process created it first; use theirs.
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new KmsPluginException(KmsErrorKind.RootKeyUnavailable, $"cannot create local root key file {path}: {e.Message}", e);
        }
    }

    private static SecretBuffer ReadKeyFile(string path)
    {
        try
        {
            var info = new FileInfo(path);
            if (!info.Exists)
            {
                throw new KmsPluginException(KmsErrorKind.RootKeyUnavailable,
                    $"local root key file {path} does not exist (set create: true to generate one)");
            }

            // Owner-only mode, owned by us or root, in directories nobody else can write (FileSafety's remarks).
            FileSafety.RequireSecretFile(path, "local root key", "keyFile");

            if (info.Length != KeyBytes)
            {
                throw new KmsPluginException(KmsErrorKind.RootKeyDenied,
                    $"local root key file {path} must hold exactly {KeyBytes} bytes, it holds {info.Length}");
            }

            var key = new SecretBuffer(KeyBytes);
            using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read);
            var read = RandomAccess.Read(handle, key.WritableSpan, 0);
            if (read != KeyBytes)
            {
                key.Dispose();
                throw new KmsPluginException(KmsErrorKind.RootKeyDenied, $"local root key file {path} could not be read in full");
            }

            return key;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new KmsPluginException(KmsErrorKind.RootKeyUnavailable, $"cannot read local root key file {path}: {e.Message}", e);
        }
    }

    public Task<byte[]> WrapAsync(ReadOnlyMemory<byte> kek, ReadOnlyMemory<byte> associatedData, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var blob = new byte[NonceBytes + kek.Length + TagBytes];
        var nonce = blob.AsSpan(0, NonceBytes);
        _random.Fill(nonce);
        lock (_aesLock)
        {
            _aes.Encrypt(nonce, kek.Span, blob.AsSpan(NonceBytes, kek.Length), blob.AsSpan(NonceBytes + kek.Length), associatedData.Span);
        }

        return Task.FromResult(blob);
    }

    public Task<SecretBuffer> UnwrapAsync(ReadOnlyMemory<byte> wrapped, ReadOnlyMemory<byte> associatedData, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var blob = wrapped.Span;
        if (blob.Length <= NonceBytes + TagBytes)
        {
            throw KmsPluginException.Corrupt($"wrapped KEK for root key '{Name}' is too short");
        }

        var plain = new SecretBuffer(blob.Length - NonceBytes - TagBytes);
        try
        {
            lock (_aesLock)
            {
                _aes.Decrypt(blob[..NonceBytes], blob[NonceBytes..^TagBytes], blob[^TagBytes..], plain.WritableSpan, associatedData.Span);
            }

            return Task.FromResult(plain);
        }
        catch (CryptographicException e)
        {
            plain.Dispose();
            throw new KmsPluginException(KmsErrorKind.Corruption, $"wrapped KEK failed authentication under root key '{Name}'", e);
        }
    }

    public void Dispose()
    {
        _aes.Dispose();
        _key.Dispose();
    }
}
