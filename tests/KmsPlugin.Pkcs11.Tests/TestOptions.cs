using KmsPlugin.Core.Security;
using KmsPlugin.Pkcs11;
using KmsPlugin.TestSupport;

namespace KmsPlugin.Pkcs11.Tests;

/// <summary>Options for a token's first key; vary them with <c>with { ... }</c>.</summary>
internal static class TestOptions
{
    public static Pkcs11RootKeyOptions For(SoftHsmToken token, string name = "hsm") => new()
    {
        Name = name,
        Library = token.Library,
        TokenLabel = token.TokenLabel,
        KeyLabel = token.KeyLabel,
        PinFile = token.PinFile,
    };

    public static byte[] Kek(byte seed = 0x42)
    {
        var kek = new byte[32];
        for (var i = 0; i < kek.Length; i++)
        {
            kek[i] = (byte)(seed + i);
        }

        return kek;
    }

    /// <summary>Writes <paramref name="content"/> to a file with the given mode (0600 unless told otherwise).</summary>
    public static string WritePinFile(TempDirectory directory, string content,
        UnixFileMode mode = UnixFileMode.UserRead | UnixFileMode.UserWrite)
    {
        var path = directory.FilePath("pin-" + Guid.NewGuid().ToString("N")[..8]);
        File.WriteAllText(path, content);
        File.SetUnixFileMode(path, mode);
        return path;
    }
}

/// <summary>A deterministic random source that records what it handed out (so tests can find the IV in the blob).</summary>
internal sealed class CountingRandomSource : IRandomSource
{
    private readonly Lock _gate = new();
    private byte _next = 1;

    public List<byte[]> Issued { get; } = [];

    public void Fill(Span<byte> destination)
    {
        lock (_gate)
        {
            for (var i = 0; i < destination.Length; i++)
            {
                destination[i] = _next++;
            }

            Issued.Add(destination.ToArray());
        }
    }
}
