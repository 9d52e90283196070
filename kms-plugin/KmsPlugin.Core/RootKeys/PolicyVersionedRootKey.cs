namespace KmsPlugin.Core.RootKeys;

/// <summary>
/// <see cref="PolicyRootKey"/> for a key whose backend has versions: its version lookup is a remote call and goes
/// through the same policy (<see cref="RootKeyOperation.ReadVersion"/>), and the key it moves to is decorated with the
/// same policy instance.
/// </summary>
public sealed class PolicyVersionedRootKey : PolicyRootKey, IVersionedRootKey
{
    private readonly IVersionedRootKey _inner;

    internal PolicyVersionedRootKey(IVersionedRootKey inner, IRootKeyCallPolicy policy)
        : base(inner, policy) => _inner = inner;

    public bool FollowsLatestVersion => _inner.FollowsLatestVersion;

    public string CurrentVersion => _inner.CurrentVersion;

    public Task<string> ReadLatestVersionAsync(CancellationToken cancellationToken) =>
        Policy.RunAsync(RootKeyOperation.ReadVersion, _inner.ReadLatestVersionAsync, cancellationToken);

    public IVersionedRootKey WithVersion(string version) => new PolicyVersionedRootKey(_inner.WithVersion(version), Policy);
}
