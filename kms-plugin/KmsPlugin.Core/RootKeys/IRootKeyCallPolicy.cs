namespace KmsPlugin.Core.RootKeys;

/// <summary>
/// What runs around each remote call of a root key (<see cref="PolicyRootKey"/>): it may measure the call, fail it
/// fast without reaching the backend, or simply pass it through. Local checks (<see cref="IRootKey.Recognizes"/>,
/// identity, versions) never go through a policy.
/// </summary>
public interface IRootKeyCallPolicy
{
    /// <summary>Runs <paramref name="remoteCall"/> (one remote call of <paramref name="operation"/>, its retries included), or throws instead.</summary>
    Task<T> RunAsync<T>(RootKeyOperation operation, Func<CancellationToken, Task<T>> remoteCall, CancellationToken cancellationToken);
}
