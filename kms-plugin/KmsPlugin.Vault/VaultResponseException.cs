using System.Net;

namespace KmsPlugin.Vault;

/// <summary>
/// Vault answered with an error status. <see cref="Errors"/> are the strings of Vault's <c>{"errors": [...]}</c> body
/// (Vault HTTP API, "Error Response"); they describe the problem and never echo tokens.
/// </summary>
internal sealed class VaultResponseException : Exception
{
    public VaultResponseException(HttpStatusCode status, IReadOnlyList<string> errors, TimeSpan? retryAfter)
        : base($"HTTP {(int)status}" + (errors.Count == 0 ? "" : ": " + string.Join("; ", errors)))
    {
        Status = status;
        Errors = errors;
        RetryAfter = retryAfter;
    }

    public HttpStatusCode Status { get; }

    public IReadOnlyList<string> Errors { get; }

    /// <summary>The wait a 429 asked for (Retry-After), if any.</summary>
    public TimeSpan? RetryAfter { get; }

    public bool Mentions(string text) => Errors.Any(e => e.Contains(text, StringComparison.OrdinalIgnoreCase));
}
