using System.Security.Cryptography;
using Google.Protobuf;
using Grpc.Core;
using KmsPlugin.Configuration;
using KmsPlugin.Hosting;
using KmsPlugin.Protocol.V2;
using KmsPlugin.TestSupport;

namespace KmsPlugin.Tests.Robustness;

/// <summary>Nothing secret ever reaches a log line, at debug level, through successes, failures and tampering.</summary>
public sealed class LogHygieneTests
{
    [Fact]
    public async Task Seeds_and_key_material_never_appear_in_the_logs_raw_hex_or_base64()
    {
        var logs = new CapturingLoggerProvider();
        using var dir = new TempDirectory();
        var seeds = new List<byte[]>();
        await using (var plugin = await PluginHost.StartLocalAsync(dir, new ServerDependencies { ExtraLogger = logs },
            c => c with { Logging = new LoggingConfig { Level = LogLevel.Trace } }))
        {
            await plugin.WaitForProbeAsync();
            for (var i = 0; i < 20; i++)
            {
                var seed = RandomNumberGenerator.GetBytes(32);
                seeds.Add(seed);
                var stored = await plugin.Apiserver.EncryptAsync(seed);
                Assert.Equal(seed, await plugin.Apiserver.DecryptAsync(stored));

                // failures log their reason: tamper with the request; send the seed as a key_id (logs carry key_id hashes only)
                var tampered = new DecryptRequest { Ciphertext = stored.Ciphertext, KeyId = stored.KeyId, Uid = Guid.NewGuid().ToString() };
                tampered.Annotations.Add(stored.Annotations);
                var bytes = stored.Ciphertext.ToByteArray();
                bytes[^1] ^= 1; // always a change (setting it to 0 was none when the tag's last byte was 0)
                tampered.Ciphertext = ByteString.CopyFrom(bytes);
                await Assert.ThrowsAsync<RpcException>(async () => await plugin.Apiserver.Client.DecryptAsync(tampered));
                var foreignKeyId = new DecryptRequest { Ciphertext = stored.Ciphertext, KeyId = Convert.ToHexString(seed), Uid = "x" };
                foreignKeyId.Annotations.Add(stored.Annotations);
                await Assert.ThrowsAsync<RpcException>(async () => await plugin.Apiserver.Client.DecryptAsync(foreignKeyId));
                await Assert.ThrowsAsync<RpcException>(async () => await plugin.Apiserver.EncryptAsync(new byte[600]));
            }
        }

        var rootKey = await File.ReadAllBytesAsync(dir.FilePath("root.key"));
        var secrets = seeds.Append(rootKey).SelectMany(Forms).ToList();
        Assert.NotEmpty(logs.Lines);
        foreach (var line in logs.Lines)
        {
            foreach (var secret in secrets)
            {
                Assert.DoesNotContain(secret, line, StringComparison.OrdinalIgnoreCase);
            }
        }
    }

    private static IEnumerable<string> Forms(byte[] secret) =>
    [
        Convert.ToHexString(secret),
        Convert.ToBase64String(secret),
        Convert.ToBase64String(secret).TrimEnd('=').Replace('+', '-').Replace('/', '_'),
        System.Text.Encoding.Latin1.GetString(secret),
    ];
}
