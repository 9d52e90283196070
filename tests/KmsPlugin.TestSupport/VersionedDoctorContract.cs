using KmsPlugin.Cli;
using Xunit;

namespace KmsPlugin.TestSupport;

/// <summary>
/// <see cref="DoctorContract"/> for a provider whose keys have versions: the followed version is reported, and an
/// entry pinned to an older version is reported as pinned, with that version's key_id, without reading the current one.
/// </summary>
public abstract class VersionedDoctorContract(string provider, string rootKeyName) : DoctorContract(provider, rootKeyName)
{
    /// <summary>A version of the key older than <see cref="FollowedVersion"/>.</summary>
    protected abstract string OlderVersion { get; }

    protected abstract override string FollowedVersion { get; }

    protected override string ExpectedKeyId => KeyIdAt(FollowedVersion);

    /// <summary>The entry of <see cref="DoctorContract.RootKeyEntry"/> pinned to <paramref name="version"/>.</summary>
    protected abstract string PinnedEntry(string version);

    /// <summary>The key_id of the key at <paramref name="version"/>.</summary>
    protected abstract string KeyIdAt(string version);

    [Fact]
    public async Task Doctor_prints_a_pinned_version_as_pinned_with_that_versions_key_id()
    {
        var output = await DoctorAsync(PinnedEntry(OlderVersion), Commands.Ok);

        Assert.Contains($"version {OlderVersion}, pinned", output, StringComparison.Ordinal);
        Assert.DoesNotContain("followed", output, StringComparison.Ordinal);
        Assert.Contains("wrap OK", output, StringComparison.Ordinal);
        Assert.Contains($"key_id:  the plugin will report {KeyIdAt(OlderVersion)}", output, StringComparison.Ordinal);
        Assert.EndsWith("doctor: OK", output.TrimEnd(), StringComparison.Ordinal);
        Assert.Equal(1, KeyReads()); // the open only: a pinned key's current version is not read
    }
}
