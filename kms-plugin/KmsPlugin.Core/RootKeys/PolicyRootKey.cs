using KmsPlugin.Core.Security;

namespace KmsPlugin.Core.RootKeys;

/// <summary>
/// A root key whose wraps and unwraps run through an <see cref="IRootKeyCallPolicy"/>; everything else is forwarded
/// unchanged, including the default-implemented members of <see cref="IRootKey"/> (a decorator that did not forward
/// them would silently use the interface's default instead of the provider's). Made by <see cref="Decorate"/>, which
/// keeps a key whose backend has versions an <see cref="IVersionedRootKey"/> (<see cref="PolicyVersionedRootKey"/>).
/// </summary>
public class PolicyRootKey : IRootKey
{
    private protected PolicyRootKey(IRootKey inner, IRootKeyCallPolicy policy)
    {
        Inner = inner;
        Policy = policy;
    }

    /// <summary>The decorated key.</summary>
    public IRootKey Inner { get; }

    public IRootKeyCallPolicy Policy { get; }

    public string Name => Inner.Name;

    public string Provider => Inner.Provider;

    public string KeyId => Inner.KeyId;

    /// <summary>
    /// <paramref name="key"/> with its remote calls run through <paramref name="policy"/>. A key whose backend has
    /// versions stays an <see cref="IVersionedRootKey"/>, so the version follower still finds it, and the versions it
    /// moves to get the same policy instance (a circuit breaker is shared: they live on the same backend).
    /// </summary>
    public static IRootKey Decorate(IRootKey key, IRootKeyCallPolicy policy)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(policy);
        return key is IVersionedRootKey versioned ? new PolicyVersionedRootKey(versioned, policy) : new PolicyRootKey(key, policy);
    }

    public Task<byte[]> WrapAsync(ReadOnlyMemory<byte> kek, ReadOnlyMemory<byte> associatedData, CancellationToken cancellationToken) =>
        Policy.RunAsync(RootKeyOperation.Wrap, token => Inner.WrapAsync(kek, associatedData, token), cancellationToken);

    public Task<SecretBuffer> UnwrapAsync(ReadOnlyMemory<byte> wrapped, ReadOnlyMemory<byte> associatedData, CancellationToken cancellationToken) =>
        Policy.RunAsync(RootKeyOperation.Unwrap, token => Inner.UnwrapAsync(wrapped, associatedData, token), cancellationToken);

    /// <summary>A local check (no remote call), so it bypasses the policy.</summary>
    public bool Recognizes(string keyId, ReadOnlySpan<byte> wrapped) => Inner.Recognizes(keyId, wrapped);

    public void Dispose()
    {
        Inner.Dispose();
        GC.SuppressFinalize(this); // CA1816: the class is unsealed (the versioned flavour derives from it)
    }
}
