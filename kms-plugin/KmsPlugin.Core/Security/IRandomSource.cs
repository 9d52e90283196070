using System.Security.Cryptography;

namespace KmsPlugin.Core.Security;

/// <summary>Randomness for keys and nonces, injectable so tests can observe or control it.</summary>
public interface IRandomSource
{
    void Fill(Span<byte> destination);
}

/// <summary>The OS CSPRNG (getrandom on Linux). The only implementation used outside tests.</summary>
public sealed class CsprngRandomSource : IRandomSource
{
    public static CsprngRandomSource Instance { get; } = new();

    public void Fill(Span<byte> destination) => RandomNumberGenerator.Fill(destination);
}
