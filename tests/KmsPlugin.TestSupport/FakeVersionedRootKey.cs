using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using KmsPlugin.Core.Errors;
using KmsPlugin.Core.RootKeys;
using KmsPlugin.Core.Security;

namespace KmsPlugin.TestSupport;

/// <summary>
/// A backend with key versions that move remotely (like a Vault transit key or a GCP CryptoKey), for the version
/// follower: each version is its own AES-256-GCM key, each wrap starts with its version, and the test sets
/// <see cref="LatestVersion"/> to "rotate" or "roll back" remotely.
/// </summary>
public sealed class FakeVersionedBackend
{
    private readonly ConcurrentDictionary<string, byte[]> _keys = new(StringComparer.Ordinal);
    private int _versionReads;

    public string LatestVersion { get; set; } = "1";

    /// <summary>When set, reading the latest version fails (the backend's metadata API is down).</summary>
    public KmsPluginException? ReadFailure { get; set; }

    public int VersionReads => Volatile.Read(ref _versionReads);

    internal byte[] KeyFor(string version) => _keys.GetOrAdd(version, _ => RandomNumberGenerator.GetBytes(32));

    internal string ReadLatest()
    {
        Interlocked.Increment(ref _versionReads);
        return ReadFailure is { } failure ? throw failure : LatestVersion;
    }
}

public sealed class FakeVersionedRootKey(FakeVersionedBackend backend, string name, string currentVersion, bool follows = true) : IVersionedRootKey
{
    public string Name => name;

    public string Provider => "fakever";

    public string KeyId => KeyIdFor(currentVersion);

    public bool FollowsLatestVersion => follows;

    public string CurrentVersion => currentVersion;

    public bool Disposed { get; private set; }

    public string KeyIdFor(string v) => KeyIds.Derive(Provider, $"{name}/versions/{v}");

    public Task<string> ReadLatestVersionAsync(CancellationToken cancellationToken) => Task.FromResult(backend.ReadLatest());

    public IVersionedRootKey WithVersion(string version) => new FakeVersionedRootKey(backend, name, version, follows);

    public Task<byte[]> WrapAsync(ReadOnlyMemory<byte> kek, ReadOnlyMemory<byte> associatedData, CancellationToken cancellationToken)
    {
        var header = Encoding.ASCII.GetBytes(currentVersion + ":");
        var blob = new byte[header.Length + 12 + kek.Length + 16];
        header.CopyTo(blob, 0);
        var body = blob.AsSpan(header.Length);
        RandomNumberGenerator.Fill(body[..12]);
        using var aes = new AesGcm(backend.KeyFor(currentVersion), 16);
        aes.Encrypt(body[..12], kek.Span, body.Slice(12, kek.Length), body[^16..], associatedData.Span);
        return Task.FromResult(blob);
    }

    public Task<SecretBuffer> UnwrapAsync(ReadOnlyMemory<byte> wrapped, ReadOnlyMemory<byte> associatedData, CancellationToken cancellationToken)
    {
        if (!TryVersion(wrapped.Span, out var blobVersion, out var headerLength) || wrapped.Length < headerLength + 12 + 16 + 1)
        {
            throw KmsPluginException.Corrupt("fakever: not a wrap of this backend");
        }

        var body = wrapped.Span[headerLength..];
        var plain = new SecretBuffer(body.Length - 28);
        try
        {
            using var aes = new AesGcm(backend.KeyFor(blobVersion), 16);
            aes.Decrypt(body[..12], body[12..^16], body[^16..], plain.WritableSpan, associatedData.Span);
            return Task.FromResult(plain);
        }
        catch (CryptographicException e)
        {
            plain.Dispose();
            throw new KmsPluginException(KmsErrorKind.Corruption, "fakever: wrapped KEK failed authentication", e);
        }
    }

    public bool Recognizes(string keyId, ReadOnlySpan<byte> wrapped) => TryVersion(wrapped, out var v, out _) && KeyIdFor(v) == keyId;

    private static bool TryVersion(ReadOnlySpan<byte> wrapped, out string version, out int headerLength)
    {
        var colon = wrapped[..Math.Min(wrapped.Length, 12)].IndexOf((byte)':');
        version = colon > 0 ? Encoding.ASCII.GetString(wrapped[..colon]) : "";
        headerLength = colon + 1;
        return colon > 0;
    }

    public void Dispose() => Disposed = true;
}
