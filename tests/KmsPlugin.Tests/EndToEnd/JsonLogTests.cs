using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Grpc.Core;
using KmsPlugin.Client;
using KmsPlugin.Core.Security;
using KmsPlugin.TestSupport;

namespace KmsPlugin.Tests.EndToEnd;

/// <summary>
/// The real executable with <c>logging: {format: json, level: debug}</c>: every line it writes is one JSON object, each
/// request is logged with its uid, status code and key_id hash, and no seed appears in any form.
/// </summary>
public sealed class JsonLogTests
{
    [Fact]
    public async Task Json_debug_logs_are_one_object_per_line_carry_request_uids_and_never_a_seed()
    {
        using var dir = new TempDirectory();
        var socket = dir.FilePath("kms.sock");
        var port = FreeTcpPort.Next();
        await File.WriteAllTextAsync(dir.FilePath("config.yaml"), $$"""
            listen: unix://{{socket}}
            rootKeys:
              - name: dev
                provider: local
                local: { keyFile: root.key, create: true }
            health: { listen: 127.0.0.1:{{port}} }
            logging: { format: json, level: debug }
            """);

        var seeds = new List<byte[]>();
        var calls = new List<(string Uid, string Method, string Code, string KeyId)>();
        var rejectedUid = $"rejected-{Guid.NewGuid():N}";
        string output;
        await using (var plugin = PluginProcess.Start(dir.Path, null, "serve", "--config", dir.FilePath("config.yaml")))
        {
            await plugin.WaitUntilServingAsync(socket);
            using var channel = UnixSocketChannel.Create(socket);
            var apiserver = new ApiserverEmulator(channel, TimeSpan.FromSeconds(15));
            for (var i = 0; i < 5; i++)
            {
                var seed = RandomNumberGenerator.GetBytes(32);
                seeds.Add(seed);
                var encryptUid = $"enc-{i}-{Guid.NewGuid():N}";
                var stored = await apiserver.EncryptAsync(seed, encryptUid);
                calls.Add((encryptUid, "Encrypt", "OK", stored.KeyId));
                var decryptUid = $"dec-{i}-{Guid.NewGuid():N}";
                Assert.Equal(seed, await apiserver.DecryptAsync(stored, decryptUid));
                calls.Add((decryptUid, "Decrypt", "OK", stored.KeyId));
            }

            // A rejected call: an oversized plaintext whose first 32 bytes are a seed of their own.
            var oversized = RandomNumberGenerator.GetBytes(600);
            seeds.Add(oversized[..32]);
            var rejected = await Assert.ThrowsAsync<RpcException>(() => apiserver.EncryptAsync(oversized, rejectedUid));
            Assert.Equal(StatusCode.InvalidArgument, rejected.StatusCode);

            // The process's own /metrics agrees with the traffic.
            var scrape = await PrometheusScrape.GetAsync(port);
            Assert.Equal(5, scrape.Value("kms_plugin_grpc_requests_total", ("method", "Decrypt"), ("code", "OK")));
            Assert.Equal(1, scrape.Value("kms_plugin_grpc_requests_total", ("method", "Encrypt"), ("code", "InvalidArgument")));

            plugin.Signal("TERM"); // a clean exit flushes the console logger's queue
            Assert.Equal(0, await plugin.WaitForExitAsync(TimeSpan.FromSeconds(20)));
            output = plugin.Output;
        }

        var entries = new List<JsonElement>();
        foreach (var line in output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            using var document = JsonDocument.Parse(line); // throws, failing the test, on any line that is not JSON
            entries.Add(document.RootElement.Clone());
        }

        // Each request has its completion line at Debug, with the uid, the status code and the key_id's hash.
        var completed = entries.Where(e => e.GetProperty("EventId").GetInt32() == 103).ToList();
        foreach (var (uid, method, code, keyId) in calls)
        {
            var entry = Assert.Single(completed, e => State(e, "Uid") == uid);
            Assert.Equal("Debug", entry.GetProperty("LogLevel").GetString());
            Assert.EndsWith("/" + method, State(entry, "Method"), StringComparison.Ordinal);
            Assert.Equal(code, State(entry, "Code"));
            Assert.Equal(KeyIdHash.Of(keyId), State(entry, "KeyIdHash"));
            Assert.True(double.Parse(State(entry, "ElapsedMs"), System.Globalization.CultureInfo.InvariantCulture) >= 0);
        }

        // The rejection: a Warning with the reason, and the completion line with its code.
        Assert.Contains(entries, e => e.GetProperty("LogLevel").GetString() == "Warning" && State(e, "Uid") == rejectedUid && State(e, "Code") == "InvalidArgument");
        Assert.Equal("InvalidArgument", State(Assert.Single(completed, e => State(e, "Uid") == rejectedUid), "Code"));

        var rootKey = await File.ReadAllBytesAsync(dir.FilePath("root.key"));
        foreach (var secret in seeds.Append(rootKey))
        {
            foreach (var form in Forms(secret))
            {
                Assert.DoesNotContain(form, output, StringComparison.OrdinalIgnoreCase);
            }
        }
    }

    private static string State(JsonElement entry, string name) =>
        entry.TryGetProperty("State", out var state) && state.TryGetProperty(name, out var value) ? value.ToString() : "";

    /// <summary>Raw (as Latin-1 text), hex (compared ignoring case: upper and lower), base64 and base64url.</summary>
    private static IEnumerable<string> Forms(byte[] secret) =>
    [
        Encoding.Latin1.GetString(secret),
        Convert.ToHexString(secret),
        Convert.ToBase64String(secret),
        Convert.ToBase64String(secret).TrimEnd('=').Replace('+', '-').Replace('/', '_'),
    ];
}
