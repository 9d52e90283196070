namespace KmsPlugin.Core.Envelope;

/// <summary>What Encrypt returns to the apiserver (api.proto EncryptResponse), already checked against its rules.</summary>
public sealed record EncryptResult(byte[] Ciphertext, string KeyId, IReadOnlyList<KeyValuePair<string, byte[]>> Annotations);
