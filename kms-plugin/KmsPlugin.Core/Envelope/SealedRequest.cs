using KmsPlugin.Core.RootKeys;

namespace KmsPlugin.Core.Envelope;

/// <summary>
/// A Decrypt of a KEK-sealed ciphertext after every local check passed: the first root key (in configured order) that
/// can unwrap one of the annotation's wraps, with that wrap; the cache key of the KEK; the annotation value; and, for
/// a multi-wrap annotation, the other configured keys able to unwrap it, tried in order when the first one fails
/// (used only on a cache miss).
/// </summary>
internal readonly record struct SealedRequest(IRootKey RootKey, KekCacheKey CacheKey, ReadOnlyMemory<byte> AnnotationValue, ReadOnlyMemory<byte> RootKeyWrap,
    IReadOnlyList<KeyValuePair<IRootKey, ReadOnlyMemory<byte>>>? Fallbacks = null);
