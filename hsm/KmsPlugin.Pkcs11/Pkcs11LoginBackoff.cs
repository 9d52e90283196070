using System.Globalization;
using Net.Pkcs11Interop.Common;

namespace KmsPlugin.Pkcs11;

/// <summary>
/// Spaces out C_Login calls on a token after one failed for a reason other than the PIN (the token was pulled mid
/// login, the device or the network HSM failed): for <see cref="Interval"/> afterwards no new C_Login is made and
/// callers get the remembered failure at once.
/// </summary>
/// <remarks>
/// Without it every Encrypt/Decrypt that needs a fresh session — at the apiserver's request rate — would make a
/// C_Login against a failing token. A rejected PIN is never retried at all (<see cref="Pkcs11LoginGuard"/>); this
/// bounds everything else to one C_Login per interval per token, which is the health monitor's probe rate while
/// a root key is unhealthy (every min(probe interval, 10 s)), so recovery is noticed as soon as the probe would.
/// Not thread-safe: <see cref="Pkcs11Token"/> calls it under its lock.
/// </remarks>
internal sealed class Pkcs11LoginBackoff(TimeSpan interval, TimeProvider time)
{
    public static readonly TimeSpan DefaultInterval = TimeSpan.FromSeconds(10);

    private DateTimeOffset _failedAt;
    private CKR? _failure;

    public TimeSpan Interval { get; } = interval;

    /// <summary>The CKR of a C_Login that failed less than <see cref="Interval"/> ago, and when to try again.</summary>
    public bool TryGetRecentFailure(out CKR failure, out DateTimeOffset retryAfter)
    {
        failure = _failure ?? CKR.CKR_OK;
        retryAfter = _failedAt + Interval;
        return _failure is not null && time.GetUtcNow() < retryAfter;
    }

    public void RecordFailure(CKR failure)
    {
        _failure = failure;
        _failedAt = time.GetUtcNow();
    }

    public void RecordSuccess() => _failure = null;

    /// <summary>The sentence added to the error while C_Login is held back.</summary>
    public static string Describe(CKR failure, DateTimeOffset retryAfter, TimeSpan interval) =>
        $"C_Login failed with {failure}; to spare the token it is not tried again before {retryAfter.UtcDateTime.ToString("HH:mm:ss", CultureInfo.InvariantCulture)}Z (at most once every {interval.TotalSeconds.ToString("0.#", CultureInfo.InvariantCulture)}s)";
}
