using System.Security.Cryptography;
using Net.Pkcs11Interop.Common;

namespace KmsPlugin.Pkcs11;

/// <summary>
/// Process-wide memory of PINs a token has rejected, so a PIN is tried at most once per process per token.
/// </summary>
/// <remarks>
/// Tokens count failed C_Login calls and lock the user PIN after a vendor-defined number (PKCS#11 v2.40:
/// CKF_USER_PIN_COUNT_LOW / CKF_USER_PIN_FINAL_TRY / CKF_USER_PIN_LOCKED); unlocking needs the SO. A plugin that
/// retried a wrong PIN (health probes, config reloads, apiserver retries) would lock the token for every node
/// that shares it. So after a rejection we remember the PIN — as an HMAC under a random per-process key, never the
/// PIN itself — and every later attempt with the same PIN on the same token fails fast with the same message, even
/// from a new root-key instance. A different PIN (the operator fixed the file) is tried again, once.
/// This outlives C_Finalize on purpose (the token's counter does too); it resets when the process restarts.
/// It also spaces out C_Login calls after a failure that was not the PIN's (<see cref="Pkcs11LoginBackoff"/>), per
/// token and process-wide for the same reason: a new root-key instance (a config reload, a retried start) must not
/// reset the spacing.
/// </remarks>
internal static class Pkcs11LoginGuard
{
    private static readonly byte[] DigestKey = RandomNumberGenerator.GetBytes(32);
    private static readonly Lock Gate = new();
    private static readonly Dictionary<(string Module, string Token), TokenRecord> Records = [];

    /// <summary>A keyed digest of a PIN, for comparing PINs without keeping them.</summary>
    public static byte[] Digest(ReadOnlySpan<byte> pin) => HMACSHA256.HashData(DigestKey, pin);

    /// <summary>The message of an earlier rejection of this PIN by this token, if any.</summary>
    public static bool TryGetRejection(string module, string token, byte[] pinDigest, out string message)
    {
        lock (Gate)
        {
            if (Records.TryGetValue((module, token), out var record))
            {
                foreach (var (digest, text) in record.Rejected)
                {
                    if (CryptographicOperations.FixedTimeEquals(digest, pinDigest))
                    {
                        message = text;
                        return true;
                    }
                }
            }
        }

        message = "";
        return false;
    }

    public static void RecordRejection(string module, string token, byte[] pinDigest, string message)
    {
        lock (Gate)
        {
            RecordFor(module, token).Rejected.Add((pinDigest, message));
        }
    }

    /// <summary>Counts a C_Login call; called immediately before it.</summary>
    public static void RecordAttempt(string module, string token)
    {
        lock (Gate)
        {
            RecordFor(module, token).Attempts++;
        }
    }

    /// <summary>Whether a C_Login on this token failed (not for the PIN) too recently to try again.</summary>
    public static bool TryGetRecentFailure(string module, string token, out string description)
    {
        lock (Gate)
        {
            var backoff = RecordFor(module, token).Backoff;
            if (backoff.TryGetRecentFailure(out var failure, out var retryAfter))
            {
                description = Pkcs11LoginBackoff.Describe(failure, retryAfter, backoff.Interval);
                return true;
            }
        }

        description = "";
        return false;
    }

    /// <summary>A C_Login failed for a reason other than the PIN (device, token, session): hold the next one back.</summary>
    public static void RecordFailure(string module, string token, CKR failure)
    {
        lock (Gate)
        {
            RecordFor(module, token).Backoff.RecordFailure(failure);
        }
    }

    public static void RecordSuccess(string module, string token)
    {
        lock (Gate)
        {
            RecordFor(module, token).Backoff.RecordSuccess();
        }
    }

    /// <summary>How many times this process has called C_Login on the token (for tests: proves "not retried").</summary>
    public static int AttemptCount(string module, string token)
    {
        lock (Gate)
        {
            return Records.TryGetValue((module, token), out var record) ? record.Attempts : 0;
        }
    }

    private static TokenRecord RecordFor(string module, string token)
    {
        if (!Records.TryGetValue((module, token), out var record))
        {
            record = new TokenRecord();
            Records.Add((module, token), record);
        }

        return record;
    }

    private sealed class TokenRecord
    {
        public List<(byte[] Digest, string Message)> Rejected { get; } = [];

        public int Attempts { get; set; }

        public Pkcs11LoginBackoff Backoff { get; } = new(Pkcs11LoginBackoff.DefaultInterval, TimeProvider.System);
    }
}
