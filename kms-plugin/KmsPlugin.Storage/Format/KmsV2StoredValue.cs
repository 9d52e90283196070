using System.Text;
using Google.Protobuf;
using KmsPlugin.Storage.V2;

namespace KmsPlugin.Storage.Format;

/// <summary>
/// One KMS v2 etcd value: <c>k8s:enc:kms:v2:&lt;provider name&gt;:</c> followed by the protobuf-serialized
/// <see cref="EncryptedObject"/> (kmsv2-protocol.md section 3; envelope.go <c>TransformToStorage</c>). There is no
/// other framing: no magic, no length.
/// </summary>
public sealed record KmsV2StoredValue(string ProviderName, EncryptedObject EncryptedObject)
{
    /// <summary>
    /// The etcd value bytes. Annotations are written sorted by key, as the apiserver's gogo-protobuf marshaller does,
    /// so re-encoding a stored value reproduces it byte for byte.
    /// </summary>
    public byte[] Encode()
    {
        var prefix = Encoding.UTF8.GetBytes(StoragePrefixes.ForKmsV2(ProviderName));
        var canonical = EncryptedObject.Clone();
        canonical.Annotations.Clear();
        foreach (var (key, value) in EncryptedObject.Annotations.OrderBy(a => a.Key, StringComparer.Ordinal))
        {
            canonical.Annotations.Add(key, value);
        }

        var body = canonical.ToByteArray();
        var output = new byte[prefix.Length + body.Length];
        prefix.CopyTo(output, 0);
        body.CopyTo(output, prefix.Length);
        return output;
    }

    /// <summary>
    /// Decodes a KMS v2 etcd value and applies the apiserver's validation. Returns false with the reason when the
    /// value is not KMS v2, its protobuf does not parse, or the apiserver would refuse the object.
    /// </summary>
    public static bool TryDecode(ReadOnlySpan<byte> value, out KmsV2StoredValue? decoded, out string? problem)
    {
        decoded = null;
        var header = StoredValueHeader.Parse(value);
        if (header.Kind != StoredValueKind.KmsV2)
        {
            problem = $"not a KMS v2 value ({header.Label})";
            return false;
        }

        if (header.Problem is not null)
        {
            problem = header.Problem;
            return false;
        }

        EncryptedObject encryptedObject;
        try
        {
            encryptedObject = EncryptedObject.Parser.ParseFrom(value[header.PayloadOffset..]);
        }
        catch (InvalidProtocolBufferException e)
        {
            problem = "the EncryptedObject does not parse: " + e.Message;
            return false;
        }

        problem = EncryptedObjectRules.Check(encryptedObject);
        if (problem is not null)
        {
            return false;
        }

        decoded = new KmsV2StoredValue(header.Name!, encryptedObject);
        return true;
    }
}
