using System.Collections.Concurrent;
using KmsPlugin.Core.Errors;
using KmsPlugin.Core.RootKeys;
using KmsPlugin.Core.Security;

namespace KmsPlugin.TestSupport;

/// <summary>
/// Lets a test make any configured root key unreachable and count its calls, by name: pass <see cref="Decorate"/>
/// as <c>ServerDependencies.DecorateRootKey</c>; every key the plugin opens (at start, on reload, on a followed
/// version) goes through it.
/// </summary>
public sealed class RootKeySwitchboard
{
    private readonly ConcurrentDictionary<string, KmsPluginException> _failures = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, int> _wraps = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, int> _unwraps = new(StringComparer.Ordinal);

    public Func<IRootKey, IRootKey> Decorate => key => new Switched(key, this);

    /// <summary>Every later call of the named key fails with <paramref name="failure"/> (default: unavailable).</summary>
    public void Break(string name, KmsPluginException? failure = null) =>
        _failures[name] = failure ?? new KmsPluginException(KmsErrorKind.RootKeyUnavailable, $"test: root key '{name}' is unreachable");

    public void Repair(string name) => _failures.TryRemove(name, out _);

    public int Wraps(string name) => _wraps.GetValueOrDefault(name);

    public int Unwraps(string name) => _unwraps.GetValueOrDefault(name);

    private void Enter(string name, ConcurrentDictionary<string, int> counter)
    {
        counter.AddOrUpdate(name, 1, (_, n) => n + 1);
        if (_failures.TryGetValue(name, out var failure))
        {
            throw new KmsPluginException(failure.Kind, failure.Message);
        }
    }

    private sealed class Switched(IRootKey inner, RootKeySwitchboard board) : IRootKey
    {
        public string Name => inner.Name;

        public string Provider => inner.Provider;

        public string KeyId => inner.KeyId;

        public Task<byte[]> WrapAsync(ReadOnlyMemory<byte> kek, ReadOnlyMemory<byte> associatedData, CancellationToken cancellationToken)
        {
            board.Enter(Name, board._wraps);
            return inner.WrapAsync(kek, associatedData, cancellationToken);
        }

        public Task<SecretBuffer> UnwrapAsync(ReadOnlyMemory<byte> wrapped, ReadOnlyMemory<byte> associatedData, CancellationToken cancellationToken)
        {
            board.Enter(Name, board._unwraps);
            return inner.UnwrapAsync(wrapped, associatedData, cancellationToken);
        }

        public bool Recognizes(string keyId, ReadOnlySpan<byte> wrapped) => inner.Recognizes(keyId, wrapped);

        public void Dispose() => inner.Dispose();
    }
}
