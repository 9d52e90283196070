using System.Security.Cryptography;
using KmsPlugin.Core.Errors;

namespace KmsPlugin.Core.RootKeys;

/// <summary>
/// Wraps and unwraps a random 32-byte canary to prove a root key usable (permission to wrap and to unwrap, the right
/// key), e.g. before a reload makes it the primary. The canary is never a KEK and its associated data says so.
/// </summary>
public static class RootKeyCanary
{
    private static readonly byte[] CanaryAad = "k8s-kms-plugin/canary/v1"u8.ToArray();

    /// <exception cref="KmsPluginException">The key's own error, or RootKeyUnavailable on timeout, Corruption on a different canary.</exception>
    public static async Task CheckAsync(IRootKey key, TimeSpan timeout, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(key);
        var canary = RandomNumberGenerator.GetBytes(32);
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        try
        {
            var wrapped = await key.WrapAsync(canary, CanaryAad, deadline.Token);
            using var unwrapped = await key.UnwrapAsync(wrapped, CanaryAad, deadline.Token);
            if (!CryptographicOperations.FixedTimeEquals(unwrapped.Span, canary))
            {
                throw KmsPluginException.Corrupt($"root key '{key.Name}' returned a different canary on unwrap");
            }
        }
        catch (OperationCanceledException e) when (!cancellationToken.IsCancellationRequested)
        {
            throw new KmsPluginException(KmsErrorKind.RootKeyUnavailable, $"root key '{key.Name}' did not wrap and unwrap a canary within {timeout.TotalSeconds:0.#}s", e);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(canary);
        }
    }
}
