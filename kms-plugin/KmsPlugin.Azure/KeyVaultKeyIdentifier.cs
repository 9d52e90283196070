namespace KmsPlugin.Azure;

/// <summary>
/// Key Vault key identifiers (<c>kid</c>): <c>https://{vault}/keys/{name}/{version}</c> (Key Vault REST, "Key
/// identifier"). The version is what a versionless key resolves to, and the kid is the identity a key_id hashes.
/// </summary>
internal static class KeyVaultKeyIdentifier
{
    /// <summary>Key versions are 32 lowercase hex digits today; letters and digits up to 64 are accepted.</summary>
    public static bool IsValidVersion(string version) =>
        version.Length is > 0 and <= 64 && version.All(char.IsAsciiLetterOrDigit);

    public static string Format(string normalizedVault, string keyName, string version) => $"{normalizedVault}/keys/{keyName}/{version}";

    /// <summary>
    /// The version in <paramref name="kid"/> when it names key <paramref name="keyName"/>. The host is not compared:
    /// through a private endpoint or custom DNS name the vault still answers with its canonical host.
    /// </summary>
    public static string? VersionOf(string? kid, string keyName)
    {
        if (kid is null || !Uri.TryCreate(kid, UriKind.Absolute, out var uri))
        {
            return null;
        }

        var segments = uri.AbsolutePath.Trim('/').Split('/');
        if (segments.Length != 3 || segments[0] != "keys"
            || !string.Equals(segments[1], keyName, StringComparison.OrdinalIgnoreCase) || !IsValidVersion(segments[2]))
        {
            return null;
        }

        return segments[2];
    }
}
