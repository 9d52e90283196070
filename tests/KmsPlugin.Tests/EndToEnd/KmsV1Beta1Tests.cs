using System.Buffers.Binary;
using System.Security.Cryptography;
using Google.Protobuf;
using Grpc.Core;
using KmsPlugin.Configuration;
using KmsPlugin.Core.Envelope;
using KmsPlugin.Core.Protocol;
using KmsPlugin.Hosting;
using KmsPlugin.TestSupport;
using V1 = KmsPlugin.Protocol.V1Beta1;
using V2 = KmsPlugin.Protocol.V2;

namespace KmsPlugin.Tests.EndToEnd;

/// <summary>
/// The deprecated KMS v1 service (/v1beta1.KeyManagementService) over the real Unix socket, beside KMS v2, the way
/// kube-apiserver's v1 client calls it (envelope/grpc_service.go: Version first, every request with version "v1beta1";
/// the v1 health check is Encrypt("ping") then Decrypt). One plugin serves most of the class: the point is also that it
/// keeps serving through every bad input.
/// </summary>
public sealed class KmsV1Beta1Tests : IAsyncLifetime
{
    private const string ApiVersion = "v1beta1";
    private PluginHost _plugin = null!;
    private V1.KeyManagementService.KeyManagementServiceClient _v1 = null!;

    public async Task InitializeAsync()
    {
        _plugin = await StartWithV1Async();
        _v1 = new V1.KeyManagementService.KeyManagementServiceClient(_plugin.Channel);
    }

    public async Task DisposeAsync() => await _plugin.DisposeAsync();

    private static Task<PluginHost> StartWithV1Async(TempDirectory? directory = null, ServerDependencies? dependencies = null,
        Func<PluginConfig, PluginConfig>? adjust = null) =>
        PluginHost.StartLocalAsync(directory, dependencies, c => (adjust?.Invoke(c) ?? c) with { KmsV1beta1 = new V1Beta1Config { Enabled = true } });

    private static DateTime Deadline => DateTime.UtcNow.AddSeconds(15);

    private async Task<byte[]> EncryptV1Async(byte[] plain, V1.KeyManagementService.KeyManagementServiceClient? client = null) =>
        (await (client ?? _v1).EncryptAsync(new V1.EncryptRequest { Version = ApiVersion, Plain = ByteString.CopyFrom(plain) }, deadline: Deadline))
        .Cipher.ToByteArray();

    private async Task<byte[]> DecryptV1Async(byte[] cipher, V1.KeyManagementService.KeyManagementServiceClient? client = null) =>
        (await (client ?? _v1).DecryptAsync(new V1.DecryptRequest { Version = ApiVersion, Cipher = ByteString.CopyFrom(cipher) }, deadline: Deadline))
        .Plain.ToByteArray();

    private static async Task<RpcException> AssertFailsAsync(Func<Task> call, StatusCode code, string? messagePart = null)
    {
        var error = await Assert.ThrowsAsync<RpcException>(call);
        Assert.True(code == error.StatusCode, $"expected {code}, got {error.StatusCode}: {error.Status.Detail}");
        if (messagePart is not null)
        {
            Assert.Contains(messagePart, error.Status.Detail, StringComparison.Ordinal);
        }

        return error;
    }

    /// <summary>Still answering both protocols, and old data still decrypts.</summary>
    private async Task AssertStillServingAsync(byte[] cipher, byte[] plain)
    {
        Assert.Equal(ApiVersion, (await _v1.VersionAsync(new V1.VersionRequest { Version = ApiVersion }, deadline: Deadline)).Version);
        Assert.Equal(plain, await DecryptV1Async(cipher));
        Assert.Equal("ok", (await _plugin.Apiserver.StatusAsync()).Healthz);
    }

    [Fact]
    public async Task Version_answers_v1beta1_with_the_runtime_name_and_a_semver_runtime_version()
    {
        var response = await _v1.VersionAsync(new V1.VersionRequest { Version = ApiVersion }, deadline: Deadline);
        Assert.Equal("v1beta1", response.Version);
        Assert.Equal("kms-plugin", response.RuntimeName);

        // semver 2.0.0: MAJOR.MINOR.PATCH, optional -prerelease and +build metadata (the SDK appends +commit).
        Assert.Matches(@"^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$", response.RuntimeVersion);
        Assert.Equal(typeof(Grpc.KeyManagementV1Beta1GrpcService).Assembly
            .GetCustomAttributes(typeof(System.Reflection.AssemblyInformationalVersionAttribute), false)
            .Cast<System.Reflection.AssemblyInformationalVersionAttribute>().Single().InformationalVersion, response.RuntimeVersion);
    }

    [Fact]
    public async Task Encrypt_then_Decrypt_of_a_32_byte_DEK_round_trips()
    {
        var dek = RandomNumberGenerator.GetBytes(ApiserverLimits.ApiserverSeedBytes);
        var cipher = await EncryptV1Async(dek);
        Assert.Equal(V1Beta1CipherFormat.FormatByte, cipher[0]);

        // The v1 envelope stores the cipher behind a uint16 length (envelope.go, cryptobyte AddUint16LengthPrefixed).
        Assert.InRange(cipher.Length, 1, ushort.MaxValue);
        Assert.Equal(dek, await DecryptV1Async(cipher));
    }

    [Fact]
    public async Task The_apiservers_v1_health_check_Encrypt_ping_then_Decrypt_succeeds()
    {
        var cipher = await EncryptV1Async("ping"u8.ToArray());
        Assert.Equal("ping"u8.ToArray(), await DecryptV1Async(cipher));
    }

    [Fact]
    public async Task Two_Encrypts_of_the_same_DEK_give_different_ciphers_that_both_decrypt()
    {
        var dek = RandomNumberGenerator.GetBytes(32);
        var first = await EncryptV1Async(dek);
        var second = await EncryptV1Async(dek);
        Assert.NotEqual(first, second);
        Assert.Equal(dek, await DecryptV1Async(first));
        Assert.Equal(dek, await DecryptV1Async(second));
    }

    [Fact]
    public async Task The_largest_accepted_plain_round_trips()
    {
        var plain = RandomNumberGenerator.GetBytes(V1Beta1Envelope.MaxPlainBytes);
        Assert.Equal(plain, await DecryptV1Async(await EncryptV1Async(plain)));
    }

    [Fact]
    public async Task V1_and_v2_are_served_together_on_one_socket_and_one_connection()
    {
        // Interleaved on the one HTTP/2 connection of the host's channel, concurrently, as two apiserver providers would.
        var calls = Enumerable.Range(0, 20).Select(async i =>
        {
            var secret = RandomNumberGenerator.GetBytes(32);
            if (i % 2 == 0)
            {
                Assert.Equal(secret, await DecryptV1Async(await EncryptV1Async(secret)));
            }
            else
            {
                var stored = await _plugin.Apiserver.EncryptAsync(secret);
                Assert.Equal(secret, await _plugin.Apiserver.DecryptAsync(stored));
            }
        });
        await Task.WhenAll(calls);
        await ApiserverEmulationTests.AssertApiserverConversationAsync(_plugin.Apiserver);
    }

    [Fact]
    public async Task A_v1_cipher_given_to_v2_Decrypt_is_invalid()
    {
        var v1Cipher = await EncryptV1Async(RandomNumberGenerator.GetBytes(32));
        var v2 = await _plugin.Apiserver.EncryptAsync(RandomNumberGenerator.GetBytes(32));

        // With a valid key_id and annotation of this plugin, as a confused or malicious caller would send it.
        var request = new V2.DecryptRequest { Ciphertext = ByteString.CopyFrom(v1Cipher), KeyId = v2.KeyId, Uid = "u" };
        request.Annotations.Add(v2.Annotations);
        await AssertFailsAsync(async () => await _plugin.Apiserver.Client.DecryptAsync(request, deadline: Deadline), StatusCode.InvalidArgument,
            "unknown format version");
    }

    [Fact]
    public async Task A_v2_ciphertext_given_to_v1_Decrypt_is_invalid()
    {
        var v2 = await _plugin.Apiserver.EncryptAsync(RandomNumberGenerator.GetBytes(32));
        await AssertFailsAsync(() => DecryptV1Async(v2.Ciphertext.ToByteArray()), StatusCode.InvalidArgument, "is a KMS v2 ciphertext");
    }

    [Fact]
    public async Task A_v2_response_repacked_as_a_v1_cipher_is_refused_not_opened()
    {
        // Someone with etcd write access rebuilds a v1 cipher from a stored v2 EncryptedObject: the sealed v2 seed
        // must not come back as a v1 DEK.
        var seed = RandomNumberGenerator.GetBytes(32);
        var v2 = await _plugin.Apiserver.EncryptAsync(seed);
        var repacked = V1Beta1CipherFormat.Encode(new EncryptResult(v2.Ciphertext.ToByteArray(), v2.KeyId,
            v2.Annotations.Select(a => new KeyValuePair<string, byte[]>(a.Key, a.Value.ToByteArray())).ToList()));
        await AssertFailsAsync(() => DecryptV1Async(repacked), StatusCode.DataLoss, "repacked");
    }

    [Fact]
    public async Task A_v1_cipher_unpacked_into_a_v2_Decrypt_never_yields_the_bare_DEK()
    {
        var dek = RandomNumberGenerator.GetBytes(32);
        var decoded = V1Beta1CipherFormat.Decode(await EncryptV1Async(dek));
        var request = new V2.DecryptRequest { Ciphertext = ByteString.CopyFrom(decoded.Ciphertext.Span), KeyId = decoded.KeyId, Uid = "u" };
        foreach (var (key, value) in decoded.Annotations)
        {
            request.Annotations.Add(key, ByteString.CopyFrom(value.Span));
        }

        // label ‖ DEK: never the DEK itself, and not a valid AES key size, so kube-apiserver's KMS v2 either refuses
        // it as a key or derives unrelated keys from it as an HKDF seed.
        var plaintext = (await _plugin.Apiserver.Client.DecryptAsync(request, deadline: Deadline)).Plaintext.ToByteArray();
        Assert.DoesNotContain(plaintext.Length, new[] { 16, 24, 32 });
        Assert.NotEqual(dek, plaintext);
        Assert.Equal(dek, plaintext[^32..]); // the caller is the trusted apiserver; the point is that it cannot use it as-is
    }

    [Theory]
    [InlineData("")]
    [InlineData("v1")]
    [InlineData("v2")]
    [InlineData("V1BETA1")]
    [InlineData("v1beta1 ")]
    [InlineData("v1beta2")]
    public async Task A_wrong_version_field_is_invalid_on_every_method(string version)
    {
        var plain = RandomNumberGenerator.GetBytes(32);
        var cipher = await EncryptV1Async(plain);
        const string expected = "this service speaks the KMS API version v1beta1";
        await AssertFailsAsync(async () => await _v1.VersionAsync(new V1.VersionRequest { Version = version }, deadline: Deadline),
            StatusCode.InvalidArgument, expected);
        await AssertFailsAsync(async () => await _v1.EncryptAsync(new V1.EncryptRequest { Version = version, Plain = ByteString.CopyFrom(plain) },
            deadline: Deadline), StatusCode.InvalidArgument, expected);
        await AssertFailsAsync(async () => await _v1.DecryptAsync(new V1.DecryptRequest { Version = version, Cipher = ByteString.CopyFrom(cipher) },
            deadline: Deadline), StatusCode.InvalidArgument, expected);
        await AssertStillServingAsync(cipher, plain);
    }

    [Fact]
    public Task Encrypt_of_an_empty_plain_is_invalid() =>
        AssertFailsAsync(() => EncryptV1Async([]), StatusCode.InvalidArgument, "plain is empty");

    [Theory]
    [InlineData(1)]
    [InlineData(4096)]
    [InlineData(60 * 1024)]
    public Task Encrypt_of_an_oversized_plain_is_invalid(int overBy) =>
        AssertFailsAsync(() => EncryptV1Async(new byte[V1Beta1Envelope.MaxPlainBytes + overBy]), StatusCode.InvalidArgument, "more than the maximum");

    [Fact]
    public Task Decrypt_of_an_empty_cipher_is_invalid() =>
        AssertFailsAsync(() => DecryptV1Async([]), StatusCode.InvalidArgument, "cipher is empty");

    [Fact]
    public Task Decrypt_of_garbage_is_invalid() =>
        AssertFailsAsync(() => DecryptV1Async([0x7F, .. RandomNumberGenerator.GetBytes(200)]), StatusCode.InvalidArgument, "unknown format byte");

    [Fact]
    public async Task Decrypt_of_a_cipher_with_a_trailing_byte_is_invalid()
    {
        var plain = RandomNumberGenerator.GetBytes(32);
        var cipher = await EncryptV1Async(plain);
        await AssertFailsAsync(() => DecryptV1Async([.. cipher, 0x00]), StatusCode.InvalidArgument, "unexpected bytes after its end");
        await AssertStillServingAsync(cipher, plain);
    }

    [Fact]
    public async Task Decrypt_of_every_truncation_of_a_cipher_is_invalid()
    {
        var plain = RandomNumberGenerator.GetBytes(32);
        var cipher = await EncryptV1Async(plain);
        for (var length = 0; length < cipher.Length; length++)
        {
            await AssertFailsAsync(() => DecryptV1Async(cipher[..length]), StatusCode.InvalidArgument);
        }

        await AssertStillServingAsync(cipher, plain);
    }

    [Fact]
    public async Task Decrypt_of_a_cipher_with_any_one_bit_flipped_is_refused_with_the_code_of_the_field_it_hit()
    {
        var plain = RandomNumberGenerator.GetBytes(32);
        var cipher = await EncryptV1Async(plain);
        var fields = Layout(cipher);
        var seen = new Dictionary<string, HashSet<StatusCode>>();
        for (var position = 0; position < cipher.Length; position++)
        {
            var flipped = (byte[])cipher.Clone();
            flipped[position] ^= (byte)(1 << (position % 8));
            var error = await Assert.ThrowsAsync<RpcException>(() => DecryptV1Async(flipped));
            var field = fields[position];
            Assert.True(Allowed(field).Contains(error.StatusCode), $"byte {position} ({field}): {error.StatusCode} {error.Status.Detail}");
            seen.TryAdd(field, []);
            seen[field].Add(error.StatusCode);
        }

        // The exact outcomes where the format leaves no choice.
        Assert.Equal([StatusCode.InvalidArgument], seen["format"]);
        Assert.Equal([StatusCode.InvalidArgument], seen["annotation key"]);
        Assert.Equal([StatusCode.DataLoss], seen["sealed body"]);
        Assert.Contains(StatusCode.FailedPrecondition, seen["key_id"]); // a key_id this plugin does not have
        await AssertStillServingAsync(cipher, plain);

        static StatusCode[] Allowed(string field) => field switch
        {
            "format" or "annotation key" => [StatusCode.InvalidArgument],
            "sealed body" => [StatusCode.DataLoss], // KEK reference, nonce, sealed DEK, tag (SealedSeedFormat)
            "sealed version" => [StatusCode.InvalidArgument],
            // A changed key_id names no root key of this plugin, or is caught by the seal's associated data.
            "key_id" => [StatusCode.FailedPrecondition, StatusCode.InvalidArgument, StatusCode.DataLoss],
            "annotation value" => [StatusCode.InvalidArgument, StatusCode.DataLoss],
            _ => [StatusCode.InvalidArgument, StatusCode.DataLoss, StatusCode.FailedPrecondition], // lengths and the count misalign the rest
        };
    }

    [Fact]
    public async Task A_v1_cipher_decrypts_after_a_restart_with_the_same_root_key()
    {
        using var directory = new TempDirectory();
        var dek = RandomNumberGenerator.GetBytes(32);
        byte[] cipher;
        await using (var writer = await StartWithV1Async(directory))
        {
            cipher = await EncryptV1Async(dek, new V1.KeyManagementService.KeyManagementServiceClient(writer.Channel));
        }

        await using var restarted = await StartWithV1Async(directory);
        Assert.Equal(dek, await DecryptV1Async(cipher, new V1.KeyManagementService.KeyManagementServiceClient(restarted.Channel)));
    }

    [Fact]
    public async Task Another_plugins_v1_cipher_names_the_unknown_key_id()
    {
        await using var other = await StartWithV1Async();
        var foreign = await EncryptV1Async(RandomNumberGenerator.GetBytes(32), new V1.KeyManagementService.KeyManagementServiceClient(other.Channel));
        await AssertFailsAsync(() => DecryptV1Async(foreign), StatusCode.FailedPrecondition, "is not one of this plugin's root keys");
    }

    [Fact]
    public async Task V1_works_in_direct_wrap_mode_too()
    {
        await using var direct = await StartWithV1Async(adjust: c => c with { EnvelopeMode = EnvelopeMode.Direct });
        var client = new V1.KeyManagementService.KeyManagementServiceClient(direct.Channel);
        var dek = RandomNumberGenerator.GetBytes(32);
        Assert.Equal(dek, await DecryptV1Async(await EncryptV1Async(dek, client), client));
    }

    [Fact]
    public async Task The_v1_conversation_works_with_the_socket_path_authority_the_v1_client_sends()
    {
        // kube-apiserver's v1 client dials the path itself (grpc.Dial(addr, ...) with no WithAuthority), so grpc-go sends
        // the socket path as :authority, inserted once into the HPACK dynamic table and then referred to by index.
        await using var client = await RawHttp2Client.ConnectAsync(_plugin.SocketPath);
        var version = V1.VersionResponse.Parser.ParseFrom(await client.UnaryAsync(1, "/v1beta1.KeyManagementService/Version",
            new V1.VersionRequest { Version = ApiVersion }.ToByteArray(), RawHttp2Client.AuthorityMode.IncrementalIndexing, "/var/run/kmsplugin/kms.sock"));
        Assert.Equal(ApiVersion, version.Version);

        var dek = RandomNumberGenerator.GetBytes(32);
        var encrypted = V1.EncryptResponse.Parser.ParseFrom(await client.UnaryAsync(3, "/v1beta1.KeyManagementService/Encrypt",
            new V1.EncryptRequest { Version = ApiVersion, Plain = ByteString.CopyFrom(dek) }.ToByteArray(),
            RawHttp2Client.AuthorityMode.IndexedFromDynamicTable, null));
        var decrypted = V1.DecryptResponse.Parser.ParseFrom(await client.UnaryAsync(5, "/v1beta1.KeyManagementService/Decrypt",
            new V1.DecryptRequest { Version = ApiVersion, Cipher = encrypted.Cipher }.ToByteArray(), RawHttp2Client.AuthorityMode.IndexedFromDynamicTable, null));
        Assert.Equal(dek, decrypted.Plain.ToByteArray());
    }

    [Fact]
    public async Task When_disabled_every_v1beta1_method_is_Unimplemented_and_v2_still_serves()
    {
        var logs = new CapturingLoggerProvider();
        await using var plugin = await PluginHost.StartLocalAsync(dependencies: new ServerDependencies { ExtraLogger = logs });
        Assert.False(plugin.Config.KmsV1beta1.Enabled); // the default
        var client = new V1.KeyManagementService.KeyManagementServiceClient(plugin.Channel);
        await AssertFailsAsync(async () => await client.VersionAsync(new V1.VersionRequest { Version = ApiVersion }, deadline: Deadline),
            StatusCode.Unimplemented);
        await AssertFailsAsync(async () => await client.EncryptAsync(new V1.EncryptRequest { Version = ApiVersion, Plain = ByteString.CopyFrom(new byte[32]) },
            deadline: Deadline), StatusCode.Unimplemented);
        await AssertFailsAsync(async () => await client.DecryptAsync(new V1.DecryptRequest { Version = ApiVersion, Cipher = ByteString.CopyFrom([1, 2, 3]) },
            deadline: Deadline), StatusCode.Unimplemented);

        await plugin.WaitForProbeAsync();
        await ApiserverEmulationTests.AssertApiserverConversationAsync(plugin.Apiserver);
        Assert.DoesNotContain(logs.Lines, line => line.Contains("KMS v1", StringComparison.Ordinal));
    }

    [Fact]
    public async Task When_enabled_a_deprecation_warning_is_logged_at_start()
    {
        var logs = new CapturingLoggerProvider();
        await using var plugin = await StartWithV1Async(dependencies: new ServerDependencies { ExtraLogger = logs });
        var warning = Assert.Single(logs.Lines, line => line.Contains("KMS v1 is deprecated upstream", StringComparison.Ordinal));
        Assert.StartsWith("Warning", warning, StringComparison.Ordinal);
        Assert.Contains("KMSv1=true", warning, StringComparison.Ordinal);
    }

    /// <summary>
    /// Names each byte of a v1 cipher by the field it belongs to, read with the documented layout
    /// (V1Beta1CipherFormat) independently of the plugin's decoder; the sealed ciphertext inside with SealedSeedFormat's.
    /// </summary>
    private static string[] Layout(byte[] cipher)
    {
        var fields = new string[cipher.Length];
        var at = 0;
        void Mark(string field, int length)
        {
            Array.Fill(fields, field, at, length);
            at += length;
        }

        int Length() => BinaryPrimitives.ReadUInt16BigEndian(cipher.AsSpan(at));
        Mark("format", 2);
        var keyIdLength = Length();
        Mark("length", 2);
        Mark("key_id", keyIdLength);
        var count = cipher[at];
        Mark("count", 1);
        for (var i = 0; i < count; i++)
        {
            var keyLength = Length();
            Mark("length", 2);
            Mark("annotation key", keyLength);
            var valueLength = Length();
            Mark("length", 2);
            Mark("annotation value", valueLength);
        }

        var sealedLength = Length();
        Mark("length", 2);
        Assert.Equal(SealedSeedFormat.Version1, cipher[at]);
        Mark("sealed version", 1);
        Mark("sealed body", sealedLength - 1);
        Assert.Equal(cipher.Length, at);
        Assert.Equal(1, count);
        return fields;
    }
}
