using System.Security.Cryptography;
using KmsPlugin.Core.Errors;
using KmsPlugin.Core.Protocol;

namespace KmsPlugin.Core.Envelope;

/// <summary>
/// KMS v1 (deprecated, <c>/v1beta1.KeyManagementService</c>) on top of the same KEK hierarchy as KMS v2: Encrypt seals
/// through <see cref="EnvelopeService.EncryptAsync"/> (same KEK, same hot path, same root keys) and packs the
/// ciphertext, key_id and annotations into one self-contained cipher (<see cref="V1Beta1CipherFormat"/>); Decrypt
/// unpacks it strictly and calls <see cref="EnvelopeService.DecryptAsync"/>.
/// <para>
/// Domain separation: what is sealed is <c>label ‖ plain</c>, never the apiserver's key alone. So a KMS v2
/// ciphertext with its key_id and annotations, repacked into a v1 cipher, opens to a 32-byte v2 seed without the label
/// and is refused (Corruption) instead of handing a KMS v2 seed to the v1 envelope as an AES key; and a v1 cipher
/// unpacked into a v2 Decrypt yields the 48 bytes <c>label ‖ key</c>, never the v1 key itself: kube-apiserver's KMS v2
/// refuses it as an AES key (16, 24 or 32 bytes) or, as a seed, derives unrelated keys from it with HKDF
/// (apiserver/pkg/storage/value/encrypt/aes, NewHKDFExtendedNonceGCMTransformer). The protocol is bound in the
/// plaintext because <see cref="EnvelopeService"/> offers no associated data of its own.
/// </para>
/// </summary>
public sealed class V1Beta1Envelope(EnvelopeService envelope)
{
    /// <summary>The only <c>version</c> kube-apiserver's KMS v1 client sends and accepts (envelope/grpc_service.go, <c>kmsapiVersion</c>).</summary>
    public const string ApiVersion = "v1beta1";

    /// <summary>16 bytes: a v2 seed (32 random bytes) starts with it with probability 2^-128.</summary>
    private static readonly byte[] PlainLabel = "k8s-kms/v1beta1\0"u8.ToArray();

    /// <summary>
    /// Largest <c>plain</c> accepted: what <see cref="EnvelopeService"/> seals (<see cref="EnvelopeOptions.MaxPlaintextBytes"/>)
    /// less the label. kube-apiserver's v1 envelope sends a 32-byte DEK (envelope.go, <c>generateKey(32)</c>) and its
    /// health check the 4 bytes <c>ping</c>.
    /// </summary>
    public static int MaxPlainBytes { get; } = new EnvelopeOptions().MaxPlaintextBytes - PlainLabel.Length;

    /// <summary>Refuses any request whose <c>version</c> field is not <see cref="ApiVersion"/> (InvalidRequest).</summary>
    public static void CheckApiVersion(string? version)
    {
        if (!string.Equals(version, ApiVersion, StringComparison.Ordinal))
        {
            throw KmsPluginException.Invalid(string.IsNullOrEmpty(version)
                ? $"version is empty; this service speaks the KMS API version {ApiVersion} and kube-apiserver always sends it"
                : $"version \"{ApiserverRules.Printable(version)}\" is not supported; this service speaks the KMS API version {ApiVersion}");
        }
    }

    /// <summary>Seals <paramref name="plain"/> and returns the self-contained v1 cipher. The caller zeroes its copy of plain.</summary>
    public async Task<byte[]> EncryptAsync(ReadOnlyMemory<byte> plain, CancellationToken cancellationToken)
    {
        if (plain.IsEmpty)
        {
            throw KmsPluginException.Invalid("plain is empty");
        }

        if (plain.Length > MaxPlainBytes)
        {
            throw KmsPluginException.Invalid(
                $"plain is {plain.Length} bytes, more than the maximum of {MaxPlainBytes} (kube-apiserver's KMS v1 envelope sends {ApiserverLimits.ApiserverSeedBytes})");
        }

        var labelled = new byte[PlainLabel.Length + plain.Length];
        EncryptResult result;
        try
        {
            PlainLabel.CopyTo(labelled, 0);
            plain.Span.CopyTo(labelled.AsSpan(PlainLabel.Length));
            result = await envelope.EncryptAsync(labelled, cancellationToken);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(labelled);
        }

        return V1Beta1CipherFormat.Encode(result);
    }

    /// <summary>Opens a v1 cipher; returns the plain in a buffer the caller zeroes.</summary>
    public async Task<byte[]> DecryptAsync(ReadOnlyMemory<byte> cipher, CancellationToken cancellationToken)
    {
        // Everything is checked locally before EnvelopeService, which checks key_id and annotations before any remote call.
        var decoded = V1Beta1CipherFormat.Decode(cipher);
        var labelled = await envelope.DecryptAsync(decoded.Ciphertext, decoded.KeyId, decoded.Annotations, cancellationToken);
        try
        {
            if (labelled.Length <= PlainLabel.Length || !labelled.AsSpan(0, PlainLabel.Length).SequenceEqual(PlainLabel))
            {
                throw KmsPluginException.Corrupt(
                    "cipher holds a KMS v2 ciphertext repacked as a KMS v1 cipher; only ciphers written by this plugin's KMS v1 Encrypt are accepted");
            }

            return labelled[PlainLabel.Length..];
        }
        finally
        {
            CryptographicOperations.ZeroMemory(labelled);
        }
    }
}
