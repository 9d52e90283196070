using KmsPlugin.Core.Security;

namespace KmsPlugin.Core.RootKeys;

/// <summary>
/// A key that never leaves its backend (HSM, cloud KMS, Vault, or a local file for development) and wraps the
/// plugin's local KEKs. One implementation per provider, chosen by explicit configuration, never by discovery.
/// </summary>
public interface IRootKey : IDisposable
{
    /// <summary>The operator's name for this entry in <c>rootKeys</c>; for logs and errors only.</summary>
    string Name { get; }

    /// <summary>The provider kind (<c>local</c>, <c>pkcs11</c>, ...).</summary>
    string Provider { get; }

    /// <summary>
    /// The key_id reported to kube-apiserver while this key is primary (see <see cref="KeyIds"/>): an opaque hash of
    /// the provider's identity for the key and its version, identical on every node configured with the same key.
    /// </summary>
    string KeyId { get; }

    /// <summary>Wraps <paramref name="kek"/>; <paramref name="associatedData"/> must be authenticated where the backend allows it.</summary>
    Task<byte[]> WrapAsync(ReadOnlyMemory<byte> kek, ReadOnlyMemory<byte> associatedData, CancellationToken cancellationToken);

    /// <summary>Unwraps a blob made by <see cref="WrapAsync"/> with the same associated data.</summary>
    /// <exception cref="Errors.KmsPluginException">Corruption when the blob does not authenticate; other kinds for backend failures.</exception>
    Task<SecretBuffer> UnwrapAsync(ReadOnlyMemory<byte> wrapped, ReadOnlyMemory<byte> associatedData, CancellationToken cancellationToken);

    /// <summary>
    /// Whether this key can unwrap <paramref name="wrapped"/>, which was made by the root key whose key_id (without
    /// any epoch suffix) is <paramref name="keyId"/>: its own <see cref="KeyId"/>, or — for providers that record the
    /// key version in the wrap — the key_id of another version of the same key, so a key that moved to a new version
    /// keeps unwrapping what older versions wrapped without a second configuration entry. A purely local check (no
    /// remote call): it runs for every uncached Decrypt, before anything is sent to the backend.
    /// </summary>
    bool Recognizes(string keyId, ReadOnlySpan<byte> wrapped) => string.Equals(keyId, KeyId, StringComparison.Ordinal);
}
