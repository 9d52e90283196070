namespace KmsPlugin.Core.Envelope;

/// <summary>
/// Identifies an unwrapped KEK: the key_id it was wrapped under and the SHA-256 of the wrapped blob (the annotation
/// value). Including key_id keeps a KEK unwrapped for one root key from ever answering for another.
/// </summary>
internal readonly record struct KekCacheKey(string KeyId, Hash256 BlobHash);
