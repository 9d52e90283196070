using System.Security.Cryptography;
using KmsPlugin.Core.Errors;
using KmsPlugin.Core.Security;
using KmsPlugin.Storage.Format;
using KmsPlugin.Storage.V2;

namespace KmsPlugin.Storage.Audit;

/// <summary>
/// <c>--verify</c>: one plugin Decrypt per distinct encrypted DEK source (as an apiserver after a restart), then the
/// objects themselves opened with HKDF-SHA256 + AES-GCM and the etcd key as AAD, up to a sample per DEK source.
/// Plaintext is zeroed at once and never printed; decrypted DEK sources live in zeroed-on-dispose buffers.
/// </summary>
internal sealed class DekSourceVerifier(IDekSourceDecryptor decryptor, int samplePerSource) : IDisposable
{
    private readonly Dictionary<string, Source> _sources = new(StringComparer.Ordinal);

    /// <summary>Verifies one object; returns the problem when it is unreadable, else null.</summary>
    public async Task<string?> VerifyAsync(string dekSourceIdentity, EncryptedObject encryptedObject, ReadOnlyMemory<byte> etcdKey, VerifyCounts counts,
        CancellationToken cancellationToken)
    {
        if (!_sources.TryGetValue(dekSourceIdentity, out var source))
        {
            source = new Source();
            try
            {
                source.DekSource = SecretBuffer.TakeAndZero(await decryptor.DecryptAsync(encryptedObject, cancellationToken));
                counts.DekSourcesDecrypted++;
            }
            catch (KmsPluginException e)
            {
                source.Failure = "the plugin could not decrypt its DEK source: " + e.Message;
                counts.DekSourcesFailed++;
            }

            _sources.Add(dekSourceIdentity, source);
        }

        if (source.DekSource is null)
        {
            counts.ObjectsUnreadable++;
            return source.Failure;
        }

        if (samplePerSource > 0 && source.Opened >= samplePerSource)
        {
            counts.ObjectsNotSampled++;
            return null;
        }

        source.Opened++;
        try
        {
            var plaintext = KmsV2Envelope.Open(encryptedObject, source.DekSource.Span, etcdKey.Span);
            CryptographicOperations.ZeroMemory(plaintext);
            counts.ObjectsReadable++;
            return null;
        }
        catch (KmsPluginException e)
        {
            counts.ObjectsUnreadable++;
            return "does not decrypt: " + e.Message;
        }
    }

    public void Dispose()
    {
        foreach (var source in _sources.Values)
        {
            source.DekSource?.Dispose();
        }

        _sources.Clear();
    }

    private sealed class Source
    {
        public SecretBuffer? DekSource { get; set; }

        public string? Failure { get; set; }

        public int Opened { get; set; }
    }
}
