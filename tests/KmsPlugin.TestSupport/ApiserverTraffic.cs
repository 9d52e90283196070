using System.Collections.Concurrent;
using System.Security.Cryptography;
using KmsPlugin.Client;
using KmsPlugin.Core.Security;
using KmsPlugin.Protocol.V2;
using Xunit;

namespace KmsPlugin.TestSupport;

/// <summary>
/// Concurrent apiserver clients that Encrypt then Decrypt in a loop over one socket, recording every ciphertext, the
/// key_ids each client saw in order, and every failure: the traffic a rotation (reload, followed remote version) must
/// not disturb. Start it, change something under it, stop it, then check what the clients saw.
/// </summary>
public sealed class ApiserverTraffic(ApiserverEmulator apiserver, int clients) : IDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private Task[] _loops = [];

    /// <summary>Every seed sealed and the response that sealed it (to decrypt again later, e.g. after a restart).</summary>
    public ConcurrentQueue<(byte[] Seed, EncryptResponse Response)> Stored { get; } = new();

    public ConcurrentQueue<Exception> Failures { get; } = new();

    /// <summary>The key_ids Encrypt returned, per client, in order (consecutive repeats collapsed).</summary>
    public ConcurrentDictionary<int, List<string>> KeyIds { get; } = new();

    /// <summary>Encrypt calls that succeeded so far.</summary>
    public int Calls => Stored.Count;

    public void Start() => _loops = [.. Enumerable.Range(0, clients).Select(RunAsync)];

    private async Task RunAsync(int client)
    {
        var keyIds = KeyIds.GetOrAdd(client, _ => []);
        while (!_stop.IsCancellationRequested)
        {
            try
            {
                var seed = RandomNumberGenerator.GetBytes(32);
                var response = await apiserver.EncryptAsync(seed, uid: $"client-{client}");
                if (keyIds.Count == 0 || keyIds[^1] != response.KeyId)
                {
                    keyIds.Add(response.KeyId);
                }

                Stored.Enqueue((seed, response));
                var plaintext = await apiserver.DecryptAsync(response);
                if (!seed.AsSpan().SequenceEqual(plaintext))
                {
                    throw new InvalidOperationException("wrong plaintext");
                }
            }
            catch (Exception e)
            {
                Failures.Enqueue(e);
            }
        }
    }

    /// <summary>Waits (bounded, about 30 s) until at least <paramref name="atLeast"/> Encrypt calls succeeded.</summary>
    public async Task WaitForCallsAsync(int atLeast)
    {
        for (var i = 0; i < 3000 && Calls < atLeast; i++)
        {
            await Task.Delay(10);
        }
    }

    public async Task StopAsync()
    {
        await _stop.CancelAsync();
        await Task.WhenAll(_loops);
    }

    /// <summary>No call failed; the key_id went from <paramref name="before"/> to <paramref name="after"/> at most once per client and never back; someone saw <paramref name="after"/>.</summary>
    public void AssertKeyIdChangedOnce(string before, string after)
    {
        Assert.Empty(Failures);
        Assert.NotEqual(before, after);
        Assert.All(KeyIds.Values, sequence => Assert.True(
            sequence.SequenceEqual([before, after]) || sequence.SequenceEqual([after]) || sequence.SequenceEqual([before]),
            "a client saw the key_id go " + string.Join(" -> ", sequence.Select(KeyIdHash.Of))));
        Assert.Contains(KeyIds.Values, sequence => sequence[^1] == after);
    }

    /// <summary>Every ciphertext the clients stored decrypts to its seed through <paramref name="other"/> (e.g. a freshly started plugin, nothing cached).</summary>
    public async Task AssertAllDecryptAsync(ApiserverEmulator other)
    {
        ArgumentNullException.ThrowIfNull(other);
        foreach (var (seed, response) in Stored)
        {
            Assert.Equal(seed, await other.DecryptAsync(response));
        }
    }

    public void Dispose() => _stop.Dispose();
}
