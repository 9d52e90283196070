using Google.Protobuf;
using KmsPlugin.Client;
using KmsPlugin.TestSupport;

namespace KmsPlugin.Tests.EndToEnd;

/// <summary>
/// kube-apiserver 1.27–1.31 (and every KMS v1 client) send the socket path as HTTP/2 :authority; Kestrel alone
/// rejects that (dotnet/aspnetcore#47043). These tests send it for real over the socket.
/// </summary>
public sealed class AuthorityCompatibilityTests
{
    [Theory]
    [InlineData("/var/run/kmsplugin/kms.sock")]
    [InlineData("%2Fvar%2Frun%2Fkmsplugin%2Fkms.sock")]
    [InlineData("localhost")]
    [InlineData("unix:/x")]
    public async Task The_apiserver_conversation_works_with_the_authority_old_apiservers_send(string authority)
    {
        await using var plugin = await PluginHost.StartLocalAsync();
        await plugin.WaitForProbeAsync();
        await using var client = await RawHttp2Client.ConnectAsync(plugin.SocketPath);

        var status = Protocol.V2.StatusResponse.Parser.ParseFrom(await client.UnaryAsync(1, "/v2.KeyManagementService/Status", [],
            RawHttp2Client.AuthorityMode.IncrementalIndexing, authority));
        Assert.Equal("ok", status.Healthz);

        var seed = System.Security.Cryptography.RandomNumberGenerator.GetBytes(32);
        var encryptRequest = new Protocol.V2.EncryptRequest { Plaintext = Google.Protobuf.ByteString.CopyFrom(seed), Uid = "u1" };
        var encrypted = Protocol.V2.EncryptResponse.Parser.ParseFrom(await client.UnaryAsync(3, "/v2.KeyManagementService/Encrypt",
            encryptRequest.ToByteArray(), RawHttp2Client.AuthorityMode.IndexedFromDynamicTable, null));
        Assert.Null(ApiserverEmulator.CheckEncrypt(encrypted, status.KeyId));

        var decryptRequest = new Protocol.V2.DecryptRequest { Ciphertext = encrypted.Ciphertext, KeyId = encrypted.KeyId, Uid = "u2" };
        decryptRequest.Annotations.Add(encrypted.Annotations);
        var decrypted = Protocol.V2.DecryptResponse.Parser.ParseFrom(await client.UnaryAsync(5, "/v2.KeyManagementService/Decrypt",
            decryptRequest.ToByteArray(), RawHttp2Client.AuthorityMode.IndexedFromDynamicTable, null));
        Assert.Equal(seed, decrypted.Plaintext.ToByteArray());
    }

    [Fact]
    public async Task The_socket_path_authority_works_on_one_connection_with_HPACK_indexing_like_grpc_go()
    {
        await using var plugin = await PluginHost.StartLocalAsync();
        await using var client = await RawHttp2Client.ConnectAsync(plugin.SocketPath);

        // grpc-go: the first request inserts :authority into the dynamic table (literal with incremental indexing);
        // later requests on the connection refer to it by index.
        var first = await client.UnaryAsync(1, "/v2.KeyManagementService/Status", [], RawHttp2Client.AuthorityMode.IncrementalIndexing,
            "/var/run/kmsplugin/kms.sock");
        var second = await client.UnaryAsync(3, "/v2.KeyManagementService/Status", [], RawHttp2Client.AuthorityMode.IndexedFromDynamicTable, null);
        var third = await client.UnaryAsync(5, "/v2.KeyManagementService/Status", [], RawHttp2Client.AuthorityMode.WithoutIndexing,
            "%2Fvar%2Frun%2Fkmsplugin%2Fkms.sock");
        var fourth = await client.UnaryAsync(7, "/v2.KeyManagementService/Status", [], RawHttp2Client.AuthorityMode.NeverIndexed,
            "/var/run/kmsplugin/kms.sock", padded: true, priority: true);

        foreach (var response in new[] { first, second, third, fourth })
        {
            var status = Protocol.V2.StatusResponse.Parser.ParseFrom(response);
            Assert.Equal("v2", status.Version);
            Assert.False(string.IsNullOrEmpty(status.KeyId));
        }
    }

    [Fact]
    public async Task A_header_block_split_over_continuation_frames_is_rewritten_too()
    {
        await using var plugin = await PluginHost.StartLocalAsync();
        await using var client = await RawHttp2Client.ConnectAsync(plugin.SocketPath);
        var response = await client.UnaryAsync(1, "/v2.KeyManagementService/Status", [], RawHttp2Client.AuthorityMode.IncrementalIndexing,
            "/var/run/kmsplugin/kms.sock", continuationChunk: 7);
        Assert.Equal("v2", Protocol.V2.StatusResponse.Parser.ParseFrom(response).Version);
    }

    [Fact]
    public async Task Garbage_after_the_preface_closes_only_that_connection()
    {
        await using var plugin = await PluginHost.StartLocalAsync();
        await using (var client = await RawHttp2Client.ConnectAsync(plugin.SocketPath))
        {
            await client.SendRawAsync([0x00, 0x00, 0x05, 0x01, 0x05, 0x00, 0x00, 0x00, 0x01, 0xff, 0xff, 0xff, 0xff, 0xff]);
            await client.WaitForCloseAsync();
        }

        Assert.Equal("ok", (await plugin.Apiserver.StatusAsync()).Healthz);
    }
}
