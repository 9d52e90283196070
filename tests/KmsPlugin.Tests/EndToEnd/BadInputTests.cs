using System.Security.Cryptography;
using Google.Protobuf;
using Grpc.Core;
using KmsPlugin.Protocol.V2;
using KmsPlugin.TestSupport;

namespace KmsPlugin.Tests.EndToEnd;

/// <summary>
/// Every malformed, tampered or foreign request gets its exact gRPC status and a clear message, and the plugin keeps
/// serving afterwards. One plugin serves the whole class (the point is that it survives all of it).
/// </summary>
public sealed class BadInputTests : IAsyncLifetime
{
    private PluginHost _plugin = null!;
    private EncryptResponse _good = null!;
    private byte[] _seed = null!;

    public async Task InitializeAsync()
    {
        _plugin = await PluginHost.StartLocalAsync();
        _seed = RandomNumberGenerator.GetBytes(32);
        _good = await _plugin.Apiserver.EncryptAsync(_seed);
    }

    public async Task DisposeAsync() => await _plugin.DisposeAsync();

    private DecryptRequest GoodRequest()
    {
        var request = new DecryptRequest { Ciphertext = _good.Ciphertext, KeyId = _good.KeyId, Uid = Guid.NewGuid().ToString() };
        request.Annotations.Add(_good.Annotations);
        return request;
    }

    private async Task AssertRejected(Func<Task> call, StatusCode code, string messagePart)
    {
        var error = await Assert.ThrowsAsync<RpcException>(call);
        Assert.Equal(code, error.StatusCode);
        Assert.Contains(messagePart, error.Status.Detail, StringComparison.Ordinal);

        // still serving, and the good data still decrypts
        Assert.Equal("ok", (await _plugin.Apiserver.StatusAsync()).Healthz);
        Assert.Equal(_seed, await _plugin.Apiserver.DecryptAsync(_good));
    }

    private Task AssertDecryptRejected(DecryptRequest request, StatusCode code, string messagePart) =>
        AssertRejected(async () => await _plugin.Apiserver.Client.DecryptAsync(request, deadline: DateTime.UtcNow.AddSeconds(3)), code, messagePart);

    private static ByteString Bytes(byte[] bytes) => ByteString.CopyFrom(bytes);

    [Fact]
    public Task Encrypt_of_an_empty_plaintext_is_invalid() =>
        AssertRejected(() => _plugin.Apiserver.EncryptAsync([]), StatusCode.InvalidArgument, "plaintext is empty");

    [Fact]
    public Task Encrypt_of_an_oversized_plaintext_is_invalid() =>
        AssertRejected(() => _plugin.Apiserver.EncryptAsync(new byte[4096]), StatusCode.InvalidArgument, "more than the maximum");

    [Fact]
    public Task Decrypt_of_an_empty_ciphertext_is_invalid()
    {
        var request = GoodRequest();
        request.Ciphertext = ByteString.Empty;
        return AssertDecryptRejected(request, StatusCode.InvalidArgument, "ciphertext is empty");
    }

    [Fact]
    public Task Decrypt_of_garbage_is_invalid()
    {
        var request = GoodRequest();
        request.Ciphertext = Bytes(RandomNumberGenerator.GetBytes(77).Select((b, i) => i == 0 ? (byte)0x7f : b).ToArray());
        return AssertDecryptRejected(request, StatusCode.InvalidArgument, "unknown format version");
    }

    [Fact]
    public Task Decrypt_of_a_truncated_ciphertext_is_invalid()
    {
        var request = GoodRequest();
        request.Ciphertext = Bytes(_good.Ciphertext.ToByteArray()[..40]);
        return AssertDecryptRejected(request, StatusCode.InvalidArgument, "too short");
    }

    [Fact]
    public Task Decrypt_of_an_oversized_ciphertext_is_invalid()
    {
        var request = GoodRequest();
        request.Ciphertext = Bytes(new byte[2000]);
        return AssertDecryptRejected(request, StatusCode.InvalidArgument, "more than the apiserver's maximum");
    }

    [Theory]
    [InlineData(17)] // KEK reference
    [InlineData(25)] // nonce
    [InlineData(40)] // ciphertext
    [InlineData(76)] // tag
    public Task Decrypt_of_a_bit_flipped_ciphertext_fails_authentication(int index)
    {
        var request = GoodRequest();
        var bytes = _good.Ciphertext.ToByteArray();
        bytes[index] ^= 0x01;
        request.Ciphertext = Bytes(bytes);
        return AssertDecryptRejected(request, StatusCode.DataLoss, index < 17 ? "does not belong" : "failed authentication");
    }

    [Fact]
    public Task Decrypt_without_the_KEK_annotation_is_invalid()
    {
        var request = GoodRequest();
        request.Annotations.Clear();
        return AssertDecryptRejected(request, StatusCode.InvalidArgument, "is missing");
    }

    [Fact]
    public Task Decrypt_with_an_extra_annotation_is_invalid()
    {
        var request = GoodRequest();
        request.Annotations.Add("extra.example.com", ByteString.CopyFromUtf8("x"));
        return AssertDecryptRejected(request, StatusCode.InvalidArgument, "unexpected annotation \"extra.example.com\"");
    }

    [Fact]
    public Task Decrypt_with_an_altered_annotation_fails_authentication()
    {
        var request = GoodRequest();
        var value = request.Annotations["kek.kmsplugin.io"].ToByteArray();
        value[^1] ^= 0x80;
        request.Annotations["kek.kmsplugin.io"] = Bytes(value);
        return AssertDecryptRejected(request, StatusCode.DataLoss, "does not belong");
    }

    [Fact]
    public async Task Decrypt_with_a_swapped_annotation_is_rejected()
    {
        // a second plugin with another root key: its annotation on our ciphertext
        await using var other = await PluginHost.StartLocalAsync();
        var foreign = await other.Apiserver.EncryptAsync(RandomNumberGenerator.GetBytes(32));
        var request = GoodRequest();
        request.Annotations.Clear();
        request.Annotations.Add(foreign.Annotations);
        await AssertDecryptRejected(request, StatusCode.DataLoss, "does not belong");
    }

    [Fact]
    public async Task Decrypt_of_another_plugins_data_names_the_unknown_key_id()
    {
        await using var other = await PluginHost.StartLocalAsync();
        var foreign = await other.Apiserver.EncryptAsync(RandomNumberGenerator.GetBytes(32));
        var request = new DecryptRequest { Ciphertext = foreign.Ciphertext, KeyId = foreign.KeyId, Uid = "u" };
        request.Annotations.Add(foreign.Annotations);
        await AssertDecryptRejected(request, StatusCode.FailedPrecondition, "is not one of this plugin's root keys");
    }

    [Fact]
    public Task Decrypt_with_a_wrong_key_id_is_refused()
    {
        var request = GoodRequest();
        request.KeyId = "local-00000000000000000000000000000000";
        return AssertDecryptRejected(request, StatusCode.FailedPrecondition, "is not one of this plugin's root keys");
    }

    [Fact]
    public Task Decrypt_with_an_empty_key_id_is_invalid()
    {
        var request = GoodRequest();
        request.KeyId = "";
        return AssertDecryptRejected(request, StatusCode.InvalidArgument, "key_id is empty");
    }

    [Fact]
    public Task Decrypt_with_an_oversized_key_id_is_invalid()
    {
        var request = GoodRequest();
        request.KeyId = new string('k', 1025);
        return AssertDecryptRejected(request, StatusCode.InvalidArgument, "more than the maximum of 1024");
    }

    [Fact]
    public Task An_oversized_message_is_refused_by_the_transport()
    {
        var request = GoodRequest();
        request.Annotations.Add("big.example.com", Bytes(new byte[200 * 1024]));
        return AssertDecryptRejected(request, StatusCode.ResourceExhausted, "exceeds the maximum");
    }

    [Fact]
    public async Task Ten_thousand_mutated_requests_cause_no_crash_and_no_wrong_plaintext()
    {
        var random = new Random(20261128);
        var original = GoodRequest();
        var codes = new Dictionary<StatusCode, int>();
        const int total = 10_000;
        var batches = Enumerable.Range(0, total).Chunk(64);
        foreach (var batch in batches)
        {
            var calls = batch.Select(async _ =>
            {
                var request = Mutate(original, random);
                try
                {
                    var response = await _plugin.Apiserver.Client.DecryptAsync(request, deadline: DateTime.UtcNow.AddSeconds(10));
                    // Only an unaltered request may succeed, and then only with the original seed.
                    Assert.Equal(_seed, response.Plaintext.ToByteArray());
                    return StatusCode.OK;
                }
                catch (RpcException e)
                {
                    return e.StatusCode;
                }
            });
            foreach (var code in await Task.WhenAll(calls))
            {
                codes[code] = codes.GetValueOrDefault(code) + 1;
            }
        }

        Assert.Equal(total, codes.Values.Sum());
        Assert.DoesNotContain(StatusCode.Internal, codes.Keys);
        Assert.DoesNotContain(StatusCode.Unknown, codes.Keys);
        Assert.True(codes.GetValueOrDefault(StatusCode.InvalidArgument) > 0);
        Assert.True(codes.GetValueOrDefault(StatusCode.DataLoss) > 0);
        Assert.Equal(_seed, await _plugin.Apiserver.DecryptAsync(_good));
        Assert.Equal(1, _plugin.Envelope.Rotations);
    }

    private static DecryptRequest Mutate(DecryptRequest original, Random random)
    {
        var request = original.Clone();
        var mutations = random.Next(1, 4);
        for (var m = 0; m < mutations; m++)
        {
            switch (random.Next(8))
            {
                case 0:
                    request.Ciphertext = Bytes(FlipBits(request.Ciphertext.ToByteArray(), random));
                    break;
                case 1:
                    var ct = request.Ciphertext.ToByteArray();
                    request.Ciphertext = Bytes(ct[..random.Next(0, ct.Length + 1)]);
                    break;
                case 2:
                    request.Ciphertext = Bytes(request.Ciphertext.ToByteArray().Concat(RandomBytes(random, random.Next(1, 64))).ToArray());
                    break;
                case 3:
                    request.Ciphertext = Bytes(RandomBytes(random, random.Next(0, 1100)));
                    break;
                case 4:
                    var value = request.Annotations.TryGetValue("kek.kmsplugin.io", out var v) ? v.ToByteArray() : RandomBytes(random, 61);
                    request.Annotations["kek.kmsplugin.io"] = Bytes(random.Next(2) == 0 ? FlipBits(value, random) : value[..random.Next(0, value.Length + 1)]);
                    break;
                case 5:
                    request.Annotations[$"k{random.Next(1000)}.example.com"] = Bytes(RandomBytes(random, random.Next(0, 100)));
                    break;
                case 6:
                    request.Annotations.Remove("kek.kmsplugin.io");
                    break;
                default:
                    var keyId = request.KeyId.ToCharArray();
                    keyId[random.Next(keyId.Length)] = (char)random.Next(32, 127);
                    request.KeyId = new string(keyId);
                    break;
            }
        }

        return request;
    }

    private static byte[] FlipBits(byte[] bytes, Random random)
    {
        if (bytes.Length > 0)
        {
            bytes[random.Next(bytes.Length)] ^= (byte)(1 << random.Next(8));
        }

        return bytes;
    }

    private static byte[] RandomBytes(Random random, int length)
    {
        var bytes = new byte[length];
        random.NextBytes(bytes);
        return bytes;
    }
}
