using KmsPlugin.Storage.Format;
using KmsPlugin.Storage.V2;

namespace KmsPlugin.Storage.Audit;

/// <summary>A KMS v2 key_id as stored: the EncryptionConfiguration provider name that wrote it and the key_id.</summary>
public readonly record struct StoredKeyId(string Provider, string KeyId)
{
    /// <summary>By provider, then key_id (ordinal).</summary>
    public static IComparer<StoredKeyId> Order { get; } = Comparer<StoredKeyId>.Create((a, b) =>
    {
        var byProvider = string.CompareOrdinal(a.Provider, b.Provider);
        return byProvider != 0 ? byProvider : string.CompareOrdinal(a.KeyId, b.KeyId);
    });
}

/// <summary>Objects under one key_id, split by DEK source type.</summary>
public sealed class KeyIdObjectCounts
{
    public long Objects { get; internal set; }

    /// <summary>Type 0, <c>AES_GCM_KEY</c> (written by 1.27, or 1.28 with KMSv2KDF off).</summary>
    public long AesGcmKey { get; internal set; }

    /// <summary>Type 1, <c>HKDF_SHA256_XNONCE_AES_GCM_SEED</c> (1.29+).</summary>
    public long HkdfSeed { get; internal set; }

    internal void Add(EncryptedDEKSourceType type)
    {
        Objects++;
        if (type == EncryptedDEKSourceType.AesGcmKey)
        {
            AesGcmKey++;
        }
        else
        {
            HkdfSeed++;
        }
    }
}

/// <summary>What one resource (etcd path) holds.</summary>
public sealed class ResourceAudit(string resource)
{
    public string Resource { get; } = resource;

    public long Total { get; internal set; }

    /// <summary>Values with no <c>k8s:enc:</c> prefix (never encrypted, or written by the identity provider).</summary>
    public long Plaintext => ByPrefix.GetValueOrDefault("plaintext");

    /// <summary>Counts by <see cref="StoredValueHeader.Label"/>: <c>plaintext</c>, <c>aescbc:key1</c>, <c>kms:v2:name</c>, ...</summary>
    public SortedDictionary<string, long> ByPrefix { get; } = new(StringComparer.Ordinal);

    /// <summary>Counts by <see cref="StoredValueKind"/>.</summary>
    public SortedDictionary<StoredValueKind, long> ByKind { get; } = [];

    /// <summary>KMS v2 values that decoded and passed the apiserver's validation, by key_id.</summary>
    public SortedDictionary<StoredKeyId, KeyIdObjectCounts> KmsV2ByKeyId { get; } = new(StoredKeyId.Order);

    /// <summary>Values the apiserver could not read whatever its keys: malformed prefix or EncryptedObject.</summary>
    public long Corrupted { get; internal set; }
}

/// <summary>Outcome of <c>--verify</c> for one key_id.</summary>
public sealed class VerifyCounts
{
    public long DekSourcesDecrypted { get; internal set; }

    public long DekSourcesFailed { get; internal set; }

    public long ObjectsReadable { get; internal set; }

    /// <summary>Objects that did not decrypt, or whose DEK source the plugin could not decrypt.</summary>
    public long ObjectsUnreadable { get; internal set; }

    /// <summary>Objects beyond the per-DEK-source sample, not opened.</summary>
    public long ObjectsNotSampled { get; internal set; }
}

/// <summary>One key_id across all scanned resources.</summary>
public sealed class KeyIdAudit(string? provider, string keyId, KeyIdRole role, string? rootKeyName)
{
    /// <summary>The provider name that wrote it, or null for a configured key_id with no data.</summary>
    public string? Provider { get; internal set; } = provider;

    public string KeyId { get; } = keyId;

    /// <summary><c>sha256:&lt;hex&gt;</c> as in the apiserver's metrics.</summary>
    public string KeyIdHash { get; } = ApiserverKeyIdHash.Of(keyId);

    public KeyIdRole Role { get; } = role;

    /// <summary>The configured root key with this key_id, or null.</summary>
    public string? RootKeyName { get; } = rootKeyName;

    public KeyIdObjectCounts Counts { get; } = new();

    /// <summary>Distinct encrypted DEK sources (= Decrypt calls an apiserver makes for them after a restart).</summary>
    public long DekSources => DekSourceIds.Count;

    internal HashSet<string> DekSourceIds { get; } = new(StringComparer.Ordinal);

    /// <summary>Null unless <c>--verify</c> covered this key_id.</summary>
    public VerifyCounts? Verify { get; internal set; }
}

/// <summary>A value that could not be read: the etcd key and why (never the value).</summary>
public sealed record AuditProblem(string Key, string Problem);

/// <summary>Everything one audit found.</summary>
public sealed class AuditReport
{
    public required string Source { get; init; }

    public required AuditOptions Options { get; init; }

    /// <summary>The etcd revision read (0 when unknown).</summary>
    public long Revision { get; internal set; }

    public int SnapshotRestarts { get; internal set; }

    public long Scanned { get; internal set; }

    public TimeSpan Elapsed { get; internal set; }

    public SortedDictionary<string, ResourceAudit> Resources { get; } = new(StringComparer.Ordinal);

    /// <summary>Every key_id found in etcd and every configured one, current first, then old, then the rest.</summary>
    public List<KeyIdAudit> KeyIds { get; } = [];

    public List<AuditProblem> Problems { get; } = [];

    public long ProblemsNotListed { get; internal set; }

    public bool Verified { get; internal set; }

    /// <summary>Values not under <see cref="AuditOptions.RequireKeyId"/> (0 when it is not set).</summary>
    public long NotUnderRequiredKeyId { get; internal set; }

    public long Corrupted => Resources.Values.Sum(r => r.Corrupted);

    public long Unreadable => KeyIds.Sum(k => k.Verify?.ObjectsUnreadable ?? 0);

    /// <summary>
    /// The verdict: with <c>--require-key-id</c>, everything is a valid KMS v2 value under that key_id; with
    /// <c>--verify</c>, nothing unreadable and nothing corrupted. Without either, an audit only reports.
    /// </summary>
    public bool Passed
    {
        get
        {
            var requirementMet = Options.RequireKeyId is null || NotUnderRequiredKeyId == 0;
            var verified = !Verified || (Unreadable == 0 && Corrupted == 0);
            return requirementMet && verified;
        }
    }
}
