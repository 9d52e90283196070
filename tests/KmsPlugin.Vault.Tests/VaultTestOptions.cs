using System.Text;
using KmsPlugin.Core.RootKeys;
using KmsPlugin.TestSupport;

namespace KmsPlugin.Vault.Tests;

/// <summary>Options for a root key on the fake: Kubernetes auth with a JWT file, the fake's clock, tiny retry waits.</summary>
internal static class VaultTestOptions
{
    /// <summary>Zero base delay: retries never wait on the clock, so a <c>FakeTimeProvider</c> need not be advanced for them.</summary>
    public static readonly RetryPolicy FastRetry = new() { MaxAttempts = 3, BaseDelay = TimeSpan.Zero, MaxDelay = TimeSpan.FromSeconds(2) };

    public static VaultTransitRootKeyOptions Kubernetes(FakeVault vault, TempDirectory dir, string jwt = "sa-jwt-generation-1")
    {
        var jwtFile = dir.FilePath("sa-token");
        File.WriteAllText(jwtFile, jwt + "\n");
        vault.AcceptedJwts[jwt] = true;
        return new VaultTransitRootKeyOptions
        {
            Name = "vault-test",
            Address = vault.Address,
            KeyName = "k8s",
            Auth = new VaultAuthOptions { Method = VaultAuthMethod.Kubernetes, Role = FakeVault.KubernetesRole, TokenFile = jwtFile },
            RequestTimeout = TimeSpan.FromSeconds(2),
            OpenTimeout = TimeSpan.FromSeconds(5),
            Retry = FastRetry,
            Time = vault.Time,
        };
    }

    public static byte[] Aad(string text = "k8s-kms-plugin/wrapped-kek/v1\nvault-0123") => Encoding.UTF8.GetBytes(text);

    /// <summary>Writes a file only its owner can read (what the provider demands of token and secret-id files).</summary>
    public static string PrivateFile(TempDirectory dir, string name, string content)
    {
        var path = dir.FilePath(name);
        File.WriteAllText(path, content);
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        return path;
    }
}
