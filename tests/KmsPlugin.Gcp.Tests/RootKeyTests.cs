using System.Security.Cryptography;
using KmsPlugin.Core.Errors;
using KmsPlugin.Core.RootKeys;
using KmsPlugin.Gcp.Tests.Fakes;
using KmsPlugin.TestSupport;

namespace KmsPlugin.Gcp.Tests;

/// <summary>The gcp root key itself against the fake Cloud KMS: AAD, CRC32C integrity both ways, versions, open checks.</summary>
public sealed class RootKeyTests
{
    private static readonly byte[] Aad = "k8s-kms-plugin/test-aad"u8.ToArray();

    [Fact]
    public async Task Wrap_and_unwrap_round_trip_with_every_checksum_sent_and_verified()
    {
        await using var bed = await GcpTestBed.StartAsync();
        bed.Kms.AddVersion();
        using var key = await bed.OpenAsync();
        var kek = RandomNumberGenerator.GetBytes(32);

        var blob = await key.WrapAsync(kek, Aad, CancellationToken.None);
        using var unwrapped = await key.UnwrapAsync(blob, Aad, CancellationToken.None);

        Assert.Equal(kek, unwrapped.Span.ToArray());
        Assert.Equal("1", key.KeyVersion);
        Assert.Equal(1, bed.Kms.Requests("encrypt"));
        Assert.Equal(1, bed.Kms.Requests("decrypt"));
    }

    [Fact]
    public void Crc32C_is_the_Castagnoli_checksum_Cloud_KMS_uses() => Assert.Equal(0xE3069283u, Crc32C.Of("123456789"u8));

    [Fact]
    public async Task Unwrap_with_other_associated_data_is_corruption()
    {
        await using var bed = await GcpTestBed.StartAsync();
        bed.Kms.AddVersion();
        using var key = await bed.OpenAsync();
        var blob = await key.WrapAsync(RandomNumberGenerator.GetBytes(32), Aad, CancellationToken.None);

        var error = await Assert.ThrowsAsync<KmsPluginException>(() => key.UnwrapAsync(blob, "another key_id"u8.ToArray(), CancellationToken.None));
        Assert.Equal(KmsErrorKind.Corruption, error.Kind);
        Assert.Contains("INVALID_ARGUMENT", error.Message, StringComparison.Ordinal);
        Assert.Equal(1, bed.Kms.Requests("decrypt")); // not retried
    }

    [Fact]
    public async Task A_blob_whose_header_names_another_version_does_not_decrypt()
    {
        await using var bed = await GcpTestBed.StartAsync();
        bed.Kms.AddVersion();
        using var key = await bed.OpenAsync();
        var blob = await key.WrapAsync(RandomNumberGenerator.GetBytes(32), Aad, CancellationToken.None);
        blob[2] = (byte)'7'; // the recorded version is in the AAD

        var error = await Assert.ThrowsAsync<KmsPluginException>(() => key.UnwrapAsync(blob, Aad, CancellationToken.None));
        Assert.Equal(KmsErrorKind.Corruption, error.Kind);
    }

    [Theory]
    [InlineData(new byte[0])]
    [InlineData(new byte[] { 0x01, 0x01, (byte)'1' })]
    [InlineData(new byte[] { 0x02, 0x01, (byte)'1', 0x00 })]
    [InlineData(new byte[] { 0x01, 0x01, (byte)'x', 0x00 })]
    public async Task Malformed_blobs_are_corruption_without_a_KMS_call(byte[] blob)
    {
        await using var bed = await GcpTestBed.StartAsync();
        bed.Kms.AddVersion();
        using var key = await bed.OpenAsync();

        var error = await Assert.ThrowsAsync<KmsPluginException>(() => key.UnwrapAsync(blob, Aad, CancellationToken.None));
        Assert.Equal(KmsErrorKind.Corruption, error.Kind);
        Assert.Equal(0, bed.Kms.Requests("decrypt"));
    }

    [Fact]
    public async Task The_primary_version_is_read_at_open_and_a_new_primary_means_a_new_key_id_while_old_blobs_still_decrypt()
    {
        await using var bed = await GcpTestBed.StartAsync();
        bed.Kms.AddVersion();
        var kek = RandomNumberGenerator.GetBytes(32);
        byte[] oldBlob;
        string oldKeyId;
        using (var before = await bed.OpenAsync())
        {
            oldKeyId = before.KeyId;
            oldBlob = await before.WrapAsync(kek, Aad, CancellationToken.None);
        }

        bed.Kms.AddVersion(makePrimary: true); // rotation: version 2 becomes primary
        using var after = await bed.OpenAsync();

        Assert.Equal("2", after.KeyVersion);
        Assert.NotEqual(oldKeyId, after.KeyId);
        Assert.Equal(KeyIds.Derive("gcp", $"{FakeCloudKms.CryptoKey}/cryptoKeyVersions/2"), after.KeyId);
        using var unwrapped = await after.UnwrapAsync(oldBlob, Aad, CancellationToken.None);
        Assert.Equal(kek, unwrapped.Span.ToArray());
    }

    [Fact]
    public async Task A_pinned_version_is_used_even_when_another_version_is_primary()
    {
        await using var bed = await GcpTestBed.StartAsync();
        bed.Kms.AddVersion();
        bed.Kms.AddVersion(makePrimary: true);
        using var pinned = await bed.OpenAsync(bed.Options(version: "1"));

        var blob = await pinned.WrapAsync(RandomNumberGenerator.GetBytes(32), Aad, CancellationToken.None);

        Assert.Equal("1", pinned.KeyVersion);
        Assert.Equal(KeyIds.Derive("gcp", $"{FakeCloudKms.CryptoKey}/cryptoKeyVersions/1"), pinned.KeyId);
        Assert.Equal((byte)'1', blob[2]);
    }

    [Fact]
    public async Task A_disabled_primary_version_is_refused_at_open()
    {
        await using var bed = await GcpTestBed.StartAsync();
        var v1 = bed.Kms.AddVersion();
        bed.Kms.SetState(v1, "DISABLED");

        var error = await Assert.ThrowsAsync<KmsPluginException>(() => bed.OpenAsync());
        Assert.Equal(KmsErrorKind.RootKeyDenied, error.Kind);
        Assert.Contains("DISABLED", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_encrypt_the_service_did_not_verify_is_corruption()
    {
        await using var bed = await GcpTestBed.StartAsync();
        bed.Kms.AddVersion();
        using var key = await bed.OpenAsync();
        bed.Kms.ReportUnverified = true;

        var error = await Assert.ThrowsAsync<KmsPluginException>(() => key.WrapAsync(RandomNumberGenerator.GetBytes(32), Aad, CancellationToken.None));
        Assert.Equal(KmsErrorKind.Corruption, error.Kind);
        Assert.Contains("verified", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_ciphertext_that_does_not_match_its_checksum_is_corruption()
    {
        await using var bed = await GcpTestBed.StartAsync();
        bed.Kms.AddVersion();
        using var key = await bed.OpenAsync();
        bed.Kms.Faults.Add(new Fault { Operation = "encrypt", Action = FaultAction.CorruptResult });

        var error = await Assert.ThrowsAsync<KmsPluginException>(() => key.WrapAsync(RandomNumberGenerator.GetBytes(32), Aad, CancellationToken.None));
        Assert.Equal(KmsErrorKind.Corruption, error.Kind);
        Assert.Contains("ciphertextCrc32c", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_missing_key_is_denied_at_open_without_retries()
    {
        await using var bed = await GcpTestBed.StartAsync();
        bed.Kms.AddVersion();

        var error = await Assert.ThrowsAsync<KmsPluginException>(() => bed.OpenAsync(bed.Options() with { CryptoKey = FakeCloudKms.CryptoKey + "x" }));
        Assert.Equal(KmsErrorKind.RootKeyDenied, error.Kind);
        Assert.Contains("NOT_FOUND", error.Message, StringComparison.Ordinal);
        Assert.Equal(1, bed.Kms.Requests("get"));
    }

    [Fact]
    public async Task An_endpoint_whose_certificate_is_not_trusted_is_refused_with_a_caFile_hint()
    {
        await using var bed = await GcpTestBed.StartAsync();
        bed.Kms.AddVersion();

        var error = await Assert.ThrowsAsync<KmsPluginException>(() => bed.OpenAsync(bed.Options() with { CaFile = null }));
        Assert.Equal(KmsErrorKind.RootKeyDenied, error.Kind);
        Assert.Contains("caFile", error.Message, StringComparison.Ordinal);
    }
}
