using System.Security.Cryptography;
using KmsPlugin.Core.Errors;
using KmsPlugin.Core.Security;
using Net.Pkcs11Interop.Common;
using Net.Pkcs11Interop.HighLevelAPI;

namespace KmsPlugin.Pkcs11;

/// <summary>
/// Tells whether a key found again later (after a stale handle or a re-login) is the key found at open.
/// </summary>
/// <remarks>
/// Labels and ids do not identify a key: an operator (or a restore) can delete <c>kek1</c> and generate a new
/// <c>kek1</c> with the same CKA_ID on a live token, and the key_id — derived from the labels so every node agrees
/// on it — would not change. Wrapping new KEKs with that key would mix two keys under one key_id. So at open the
/// key encrypts a random check value with CKM_AES_GCM, exactly like a wrap, and a key found later must decrypt it.
/// This works on every token (CKA_CHECK_VALUE is optional and CKA_UNIQUE_ID is PKCS#11 3.0) and costs one HSM call
/// per re-lookup. The check value is random and used for nothing else, and its AAD differs from every wrap's (wraps
/// start with the blob version byte), so it cannot stand in for a wrapped KEK.
/// </remarks>
internal sealed class Pkcs11KeyCheck
{
    private const int IvBits = Pkcs11WrappedBlob.IvBytes * 8;
    private const int TagBits = Pkcs11WrappedBlob.TagBytes * 8;
    private static readonly byte[] Aad = "k8s-kms-plugin/pkcs11-key-check/v1"u8.ToArray();

    private readonly byte[] _iv;
    private readonly byte[] _ciphertextAndTag;
    private readonly byte[] _checkValue;

    private Pkcs11KeyCheck(byte[] iv, byte[] ciphertextAndTag, byte[] checkValue)
    {
        _iv = iv;
        _ciphertextAndTag = ciphertextAndTag;
        _checkValue = checkValue;
    }

    /// <exception cref="Pkcs11Exception">C_EncryptInit/C_Encrypt failed.</exception>
    public static Pkcs11KeyCheck Create(ISession session, IObjectHandle key, Pkcs11InteropFactories factories)
    {
        var checkValue = RandomNumberGenerator.GetBytes(32);
        var iv = RandomNumberGenerator.GetBytes(Pkcs11WrappedBlob.IvBytes);
        using var parameters = factories.MechanismParamsFactory.CreateCkGcmParams(iv, IvBits, Aad, TagBits);
        using var mechanism = factories.MechanismFactory.Create(CKM.CKM_AES_GCM, parameters);
        return new Pkcs11KeyCheck(iv, session.Encrypt(mechanism, key, checkValue), checkValue);
    }

    /// <param name="decrypt">CKM_AES_GCM decrypt (iv, aad, ciphertext‖tag) with the key found again.</param>
    /// <exception cref="Pkcs11Exception">The token failed (not an authentication failure): the caller classifies it.</exception>
    public bool Matches(Func<byte[], byte[], byte[], SecretBuffer> decrypt)
    {
        ArgumentNullException.ThrowIfNull(decrypt);
        try
        {
            using var plain = decrypt(_iv, Aad, _ciphertextAndTag);
            return CryptographicOperations.FixedTimeEquals(plain.Span, _checkValue);
        }
        catch (KmsPluginException e) when (e.Kind == KmsErrorKind.Corruption)
        {
            return false; // the GCM tag did not verify: another key
        }
    }
}
