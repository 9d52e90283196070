using KmsPlugin.Core.RootKeys;

namespace KmsPlugin.Core.Envelope;

/// <summary>
/// A Decrypt of a KEK-sealed ciphertext after every local check passed: the root key named by key_id, the cache key of
/// the KEK, and the annotation value with the root key's wrap inside it (used only on a cache miss).
/// </summary>
internal readonly record struct SealedRequest(IRootKey RootKey, KekCacheKey CacheKey, ReadOnlyMemory<byte> AnnotationValue, ReadOnlyMemory<byte> RootKeyWrap);
