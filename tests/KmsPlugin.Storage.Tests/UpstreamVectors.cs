namespace KmsPlugin.Storage.Tests;

/// <summary>
/// Byte-exact data recorded by upstream Kubernetes tests (reference/kmsv2-protocol.md section 6), here as hex.
/// Items 1 and 2: staging/src/k8s.io/apiserver/pkg/storage/value/encrypt/aes/aes_test.go,
/// TestExtendedNonceGCMLegacyDataCompatibility (recorded from PR #118828) and TestGCMLegacyDataCompatibility (recorded
/// at commit 3b1fc60d). Item 3: test/integration/controlplane/transformation/kmsv2_transformation_test.go,
/// testKMSv2ProviderLegacyData: two complete etcd values written by kube-apiserver v1.27.0 (commit 1b4df30b, DEK source
/// type 0) and v1.28.0 (commit 855e7c48, type 1) through the in-tree base64 mock plugin (so the DEK source is
/// base64-decode(encryptedDEKSource)). The Go string literals were decoded to bytes and the result checked by
/// decrypting both (the GCM tags authenticate every byte of encryptedData) with an independent implementation.
/// </summary>
internal static class UpstreamVectors
{
    public const string Plaintext = "pandas are the best";

    public const string Aad = "bamboo";

    public const string KdfSeed = "5d40323a820ff95561675e3b95e81867c5fdd561d35a88a2d08b08aa9d4fcf5c";

    /// <summary>info(32) ‖ nonce(12) ‖ ciphertext ‖ tag.</summary>
    public const string KdfData = "2442759e33945fbad709db577a0f037fd8a709fc76979b8942209debcecb9d57" + "efe3d6ff6a1ef6ee9a5003b9"
        + "833b3043cec1e47b35175b151107a8d2416b0e296bbf66b5d102fcefdf9a78f293d271";

    public const string KdfDerivedKey = "6e58b7659c304b0c382f42f16bd700465def1dead80bf6f1bf1d52073bdb0c00";

    /// <summary>AES-128: the key is the ASCII string "snorlax_awesomes".</summary>
    public const string GcmKey = "snorlax_awesomes";

    /// <summary>nonce(12) ‖ ciphertext ‖ tag.</summary>
    public const string GcmData = "9f27c8fcea8a58c467d8e437dbf2d85955f9b4bd912f4ef967d788a0cb07797dac0a3f0a0845605ca85ac8562b4ae1";

    public const string EtcdPathPrefix = "/43da1478-5e9c-4ef3-a92a-2b19d540c8a5/registry/secrets/kms-v2-legacy-data/";

    /// <summary>v1.27.0, EncryptedDEKSourceType AES_GCM_KEY (field 5 absent), 526 bytes, at EtcdPathPrefix + "dek-source-aes-gcm-key".</summary>
    public const string AesGcmKeyName = "dek-source-aes-gcm-key";

    public const string AesGcmKeyEncryptedDekSource = "gafIvwT0ASoKdZ/D1L2SlH73LUMj5qa3hroljfS51wc=";

    public const string AesGcmKeyValue =
        "6b38733a656e633a6b6d733a76323a6b6d732d70726f76696465723a0a8a03b0c699dc01ca9a3b000000008c800bf01d4b6f7b300bb5d5c5" +
        "831ab50ecfd75665ede982b8df45ed4d6bcf2115c00b09825768209e8f1b5c3908a480026df450147aeef78c1a846e35fd478376230ed40c" +
        "83597748e11cbf12c61bba8b7208827af8db60a75d50b1e6214c628db8491a454ca0ae2bbe15528e9b0634f650b63b9fa68d96b201a18ee4" +
        "61df2f9075de369ac2cdbb62882b16983de903ddd74876430ae58c76057e0aab585f4e9a847770a8130f82593978ed8915b9e1eaa690c660" +
        "520a3004f2a6d1a5850a6bf4cfe4756c1c2a5b4112a0d9f2b52182e400a44c2726f5706c6e22e03d0c5be1b0553937117cda4e6bc33dc2f2" +
        "853c371e01b8a9f489db7ee18ce11f05424057cabc530ae8819b4c598624f601dd9dcd1de9025df469dafac20e5572c544cabd646213befe" +
        "1cc5e184ccdf26936a1e4b04ba0616850e1fca089006114b9d5b0d56e845d528910c6ed4109c481cdc9d5894c881351b8cbb7af9486f7b1d" +
        "11329046e7d868a8a1f68c8c76cab231f92382a3be376564d914f306ffb7dfab691201311a2c676166497677543041536f4b645a2f44314c" +
        "32536c4837334c554d6a3571613368726f6c6a6653353177633d22320a1b6c6f63616c2d6b656b2e6b6d732e6b756265726e657465732e69" +
        "6f1213656e637279707465642d6c6f63616c2d6b656b";

    /// <summary>v1.28.0, EncryptedDEKSourceType HKDF_SHA256_XNONCE_AES_GCM_SEED, 599 bytes.</summary>
    public const string HkdfSeedName = "dek-source-hkdf-sha256-xnonce-aes-gcm-seed";

    public const string HkdfSeedEncryptedDekSource = "/+WnKXQEM/AhXICYRNBeGk+WSuB+7OBuSYJTbP66Zyc=";

    public const string HkdfSeedValue =
        "6b38733a656e633a6b6d733a76323a6b6d732d70726f76696465723a0ad103120f87aea2a2f54a1106d0be8a81b615df3448a3b769935e29" +
        "e569e27ffd6fee221730b70aa00bece0fa092309c696f6c7a77701b9abb3f4dfec9e4a9524265a3d8a774163a5b23b09d5f905c145298bb8" +
        "14c9da147b490d563fe53af0424d9badaa486e3e572f51a3f5bae7cb9a0ae722a75c708cba32f2b0783cc484889af1b53a643d7ae3c32603" +
        "996d96e75ce3a3d769b20c8467f934d20cd67eedacf81bc6282c5bd1ffba89c8874402293a77544d3132b5fd6cd2f2851230d3d961616bce" +
        "dd49d6a50f6b32f649d0f9c2da0bc597d7d7bb83d6f71abf1369488fe4b323f3dfc824790d4c28465c587486bbe54b883d92e904f7301e09" +
        "3eac3b9ee6f02bdb99341d1a5639d5842d67f3c75a00f7330ee7a6cfc4fce0b21fa0bb1a81b3e4d7a67fc60894cd89ad40ac8101350fe841" +
        "e942fb32816f9c3f2a0c8c15a82922e8ff8d38d5214f17c5e38d8083d3c2b4ca313bf7b0f49078a6019585c0aff682516babc1823c4493cf" +
        "0ddbdf1c941751fa53e6cbd458c6bf801dc41c9d503734824a4b0b79e929bc6859becc7ce497dd3c3b33904a07ee23b279e30960efef1f22" +
        "6b8b96a098d9ff73de26b7a60ef17f32cd8562e3da3522635c4be231a2ec601be552e66a08401837e1db04f6624e4f0e1201311a2c2f2b57" +
        "6e4b5851454d2f416858494359524e4265476b2b575375422b374f427553594a54625036365a79633d22320a1b6c6f63616c2d6b656b2e6b" +
        "6d732e6b756265726e657465732e696f1213656e637279707465642d6c6f63616c2d6b656b2801";

    public static byte[] Bytes(string hex) => Convert.FromHexString(hex);
}
