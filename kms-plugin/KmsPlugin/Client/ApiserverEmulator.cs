using System.Security.Cryptography;
using Grpc.Core;
using Grpc.Net.Client;
using KmsPlugin.Core.Protocol;
using KmsPlugin.Core.Security;
using KmsPlugin.Protocol.V2;

namespace KmsPlugin.Client;

/// <summary>
/// Talks to a plugin the way kube-apiserver does (kmsv2-protocol.md section 2): every call with a deadline
/// (the EncryptionConfiguration timeout, 3 s by default), Status checked with isKMSv2ProviderHealthyAndMaybeRotateDEK's
/// rules, Encrypt responses with envelope.go's rules, Decrypt with exactly what Encrypt returned.
/// </summary>
public sealed class ApiserverEmulator(GrpcChannel channel, TimeSpan callTimeout)
{
    public KeyManagementService.KeyManagementServiceClient Client { get; } = new(channel);

    public TimeSpan CallTimeout { get; } = callTimeout;

    private DateTime Deadline => DateTime.UtcNow + CallTimeout;

    public async Task<StatusResponse> StatusAsync() => await Client.StatusAsync(new StatusRequest(), deadline: Deadline);

    public async Task<EncryptResponse> EncryptAsync(byte[] seed, string? uid = null) =>
        await Client.EncryptAsync(new EncryptRequest { Plaintext = Google.Protobuf.ByteString.CopyFrom(seed), Uid = uid ?? Guid.NewGuid().ToString() },
            deadline: Deadline);

    /// <summary>Decrypts exactly what an Encrypt returned, as the apiserver does when its DEK cache misses.</summary>
    public async Task<byte[]> DecryptAsync(EncryptResponse stored, string? uid = null)
    {
        ArgumentNullException.ThrowIfNull(stored);
        var request = new DecryptRequest { Ciphertext = stored.Ciphertext, KeyId = stored.KeyId, Uid = uid ?? Guid.NewGuid().ToString() };
        request.Annotations.Add(stored.Annotations);
        var response = await Client.DecryptAsync(request, deadline: Deadline);
        return response.Plaintext.ToByteArray();
    }

    /// <summary>The apiserver's checks of a Status response, other than healthz (null when valid).</summary>
    public static string? CheckStatus(StatusResponse status)
    {
        ArgumentNullException.ThrowIfNull(status);
        if (status.Version is not ("v2" or "v2beta1"))
        {
            return $"version \"{status.Version}\" is not v2 or v2beta1";
        }

        return ApiserverRules.CheckKeyId(status.KeyId);
    }

    /// <summary>The apiserver's checks of an Encrypt response (null when valid).</summary>
    public static string? CheckEncrypt(EncryptResponse response, string statusKeyId)
    {
        ArgumentNullException.ThrowIfNull(response);
        if (response.KeyId != statusKeyId)
        {
            return $"Encrypt key_id {KeyIdHash.Of(response.KeyId)} differs from Status key_id {KeyIdHash.Of(statusKeyId)}: the apiserver would discard it";
        }

        return ApiserverRules.CheckCiphertext(response.Ciphertext.Span)
            ?? ApiserverRules.CheckKeyId(response.KeyId)
            ?? ApiserverRules.CheckAnnotations(response.Annotations.Select(a => new KeyValuePair<string, int>(a.Key, a.Value.Length)));
    }

    /// <summary>Status, then Encrypt and Decrypt of a random 32-byte seed, every answer checked.</summary>
    public async Task<ProbeReport> ProbeAsync()
    {
        var lines = new List<string>();
        try
        {
            var status = await StatusAsync();
            lines.Add($"status:  version={status.Version} healthz={status.Healthz} key_id={status.KeyId} ({KeyIdHash.Of(status.KeyId)})");
            if (CheckStatus(status) is { } statusProblem)
            {
                return ProbeReport.Failed(lines, "status: INVALID: " + statusProblem);
            }

            var healthy = status.Healthz == "ok";
            var seed = RandomNumberGenerator.GetBytes(ApiserverLimits.ApiserverSeedBytes);
            var encrypted = await EncryptAsync(seed);
            var annotationBytes = encrypted.Annotations.Sum(a => a.Key.Length + a.Value.Length);
            lines.Add($"encrypt: ciphertext {encrypted.Ciphertext.Length} bytes, key_id {(encrypted.KeyId == status.KeyId ? "matches Status" : "DIFFERS from Status")}, "
                + $"{encrypted.Annotations.Count} annotation(s) [{string.Join(", ", encrypted.Annotations.Keys)}] totalling {annotationBytes} bytes");
            if (CheckEncrypt(encrypted, status.KeyId) is { } encryptProblem)
            {
                return ProbeReport.Failed(lines, "encrypt: INVALID: " + encryptProblem);
            }

            var decrypted = await DecryptAsync(encrypted);
            var same = CryptographicOperations.FixedTimeEquals(decrypted, seed);
            CryptographicOperations.ZeroMemory(decrypted);
            CryptographicOperations.ZeroMemory(seed);
            if (!same)
            {
                return ProbeReport.Failed(lines, "decrypt: WRONG: the plugin returned a different seed");
            }

            lines.Add($"decrypt: seed round-tripped ({ApiserverLimits.ApiserverSeedBytes} bytes)");
            return healthy
                ? new ProbeReport(true, [.. lines, "probe: OK — kube-apiserver would accept this plugin"])
                : ProbeReport.Failed(lines, $"probe: UNHEALTHY — Status healthz is \"{status.Healthz}\", so the apiserver's kms-providers health check fails");
        }
        catch (RpcException e)
        {
            return ProbeReport.Failed(lines, $"call failed: {e.StatusCode}: {e.Status.Detail}");
        }
    }
}

public sealed record ProbeReport(bool Ok, IReadOnlyList<string> Lines)
{
    public static ProbeReport Failed(List<string> lines, string last) => new(false, [.. lines, last]);
}
