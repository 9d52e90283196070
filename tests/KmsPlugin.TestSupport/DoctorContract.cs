using KmsPlugin.Cli;
using KmsPlugin.Configuration;
using Xunit;

namespace KmsPlugin.TestSupport;

/// <summary>
/// <c>kms-plugin doctor --config FILE</c> with one root key of a provider, against its fake: a healthy key is opened,
/// wraps and unwraps one canary and gets its key_id printed; a backend that denies the wrap, or the unwrap, is shown as
/// that step failing with the provider's error and hint, no key_id, and exit 1. A provider test class derives from this
/// (or from <see cref="VersionedDoctorContract"/> when its keys have versions) and supplies its fake and its YAML entry.
/// </summary>
/// <param name="provider">The entry's <c>provider</c>.</param>
/// <param name="rootKeyName">The entry's <c>name</c>.</param>
public abstract class DoctorContract(string provider, string rootKeyName) : IAsyncLifetime
{
    /// <summary>The <c>rotation.stableProbes</c> of the configuration doctor reads (it prints it for a followed key).</summary>
    protected const int StableProbes = 4;

    /// <summary>The test's directory: <c>config.yaml</c> and the socket path go there; relative paths in the entry resolve against it.</summary>
    protected abstract TempDirectory Directory { get; }

    /// <summary>The <c>rootKeys</c> item (<c>"  - name: ..."</c>), following the backend's current version where keys have versions.</summary>
    protected abstract string RootKeyEntry { get; }

    /// <summary>The backend's current version, which doctor must report as followed; null for a provider whose keys have no versions.</summary>
    protected abstract string? FollowedVersion { get; }

    /// <summary>The key_id the plugin would report for <see cref="RootKeyEntry"/>.</summary>
    protected abstract string ExpectedKeyId { get; }

    /// <summary>Fragments of the provider's error and hint for a wrap the backend denies.</summary>
    protected abstract IReadOnlyList<string> DeniedWrapMessage { get; }

    /// <summary>Fragments of the provider's error and hint for an unwrap the backend denies.</summary>
    protected abstract IReadOnlyList<string> DeniedUnwrapMessage { get; }

    public abstract Task InitializeAsync();

    public abstract Task DisposeAsync();

    /// <summary>Reads of the key's metadata the backend has received (opening it; reading its current version).</summary>
    protected abstract int KeyReads();

    protected abstract int Wraps();

    protected abstract int Unwraps();

    /// <summary>From now on the backend denies wrapping (encrypting) with the key, as a policy or role without it does.</summary>
    protected abstract void DenyWraps();

    /// <summary>From now on the backend denies unwrapping (decrypting).</summary>
    protected abstract void DenyUnwraps();

    [Fact]
    public async Task Doctor_reaches_the_backend_wraps_and_unwraps_and_prints_the_version_and_the_key_id()
    {
        var output = await DoctorAsync(RootKeyEntry, Commands.Ok);

        AssertVersionReported(output);
        Assert.Contains("wrap OK", output, StringComparison.Ordinal);
        Assert.Contains("unwrap OK", output, StringComparison.Ordinal);
        Assert.Contains($"key_id:  the plugin will report {ExpectedKeyId}", output, StringComparison.Ordinal);
        Assert.EndsWith("doctor: OK", output.TrimEnd(), StringComparison.Ordinal);
        Assert.Equal(FollowedVersion is null ? 1 : 2, KeyReads()); // the open, and the current version of a followed key
        Assert.Equal(1, Wraps());
        Assert.Equal(1, Unwraps());
    }

    [Fact]
    public async Task Doctor_shows_a_denied_wrap_as_a_failing_wrap_and_exits_1()
    {
        DenyWraps();

        var output = await DoctorAsync(RootKeyEntry, Commands.Failed);

        AssertVersionReported(output); // read before the wrap
        Assert.Contains($"root key {rootKeyName} ({provider}, primary): PROBLEM (RootKeyDenied) wrapping a canary:", output, StringComparison.Ordinal);
        AssertFailureReported(output, DeniedWrapMessage);
        Assert.Equal(0, Unwraps());
    }

    [Fact]
    public async Task Doctor_shows_a_denied_unwrap_as_a_failing_unwrap_and_exits_1()
    {
        DenyUnwraps();

        var output = await DoctorAsync(RootKeyEntry, Commands.Failed);

        AssertVersionReported(output);
        Assert.Equal(1, Wraps()); // the wrap passed; the failing step is named
        Assert.Contains($"root key {rootKeyName} ({provider}, primary): PROBLEM (RootKeyDenied) unwrapping the canary:", output, StringComparison.Ordinal);
        AssertFailureReported(output, DeniedUnwrapMessage);
    }

    /// <summary>Runs doctor on a <c>config.yaml</c> holding <paramref name="entry"/>, checks the exit code and that the key was opened, returns the output.</summary>
    protected async Task<string> DoctorAsync(string entry, int expectedExit)
    {
        var path = Directory.FilePath("config.yaml");
        await File.WriteAllTextAsync(path, string.Join('\n',
            $"listen: unix://{Directory.FilePath("kms.sock")}",
            "rootKeyTimeout: 3s",
            "rotation:",
            $"  stableProbes: {StableProbes}",
            "rootKeys:",
            entry));
        using var writer = new StringWriter();
        var exit = await DoctorCommand.RunAsync(ConfigLoader.LoadFile(path, null), path, writer);
        var output = writer.ToString();

        Assert.True(exit == expectedExit, output);
        Assert.Contains($"config:  {path} is valid (1 root key(s)", output, StringComparison.Ordinal);
        Assert.Contains($"root key {rootKeyName} ({provider}, primary): opened in", output, StringComparison.Ordinal);
        return output;
    }

    private void AssertVersionReported(string output)
    {
        if (FollowedVersion is null)
        {
            // The key's identity does not change when the backend rotates it: no version to follow or report.
            Assert.DoesNotContain("followed", output, StringComparison.Ordinal);
            Assert.DoesNotContain("pinned", output, StringComparison.Ordinal);
            return;
        }

        Assert.Contains($"version {FollowedVersion} (the backend's current version), followed", output, StringComparison.Ordinal);
        Assert.Contains($"after {StableProbes} stable probes (rotation.stableProbes)", output, StringComparison.Ordinal);
    }

    private static void AssertFailureReported(string output, IReadOnlyList<string> message)
    {
        foreach (var fragment in message)
        {
            Assert.Contains(fragment, output, StringComparison.Ordinal);
        }

        Assert.DoesNotContain("wrap OK", output, StringComparison.Ordinal);
        Assert.DoesNotContain("key_id:  the plugin will report", output, StringComparison.Ordinal);
        Assert.Contains("doctor: PROBLEMS FOUND", output, StringComparison.Ordinal);
    }
}
