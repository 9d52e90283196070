using System.Security.Cryptography;

namespace KmsPlugin.Core.Security;

/// <summary>
/// Key material in a pinned array (so the GC never leaves a moved copy behind) that is zeroed on dispose.
/// There is deliberately no ToString/string conversion: key bytes never become text.
/// </summary>
public sealed class SecretBuffer : IDisposable
{
    private readonly byte[] _bytes;
    private int _disposed;

    public SecretBuffer(int length)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(length);
        _bytes = GC.AllocateUninitializedArray<byte>(length, pinned: true);
    }

    /// <summary>Copies <paramref name="source"/> into a new secret buffer. The caller still owns (and should zero) the source.</summary>
    public static SecretBuffer CopyOf(ReadOnlySpan<byte> source)
    {
        var buffer = new SecretBuffer(source.Length);
        source.CopyTo(buffer._bytes);
        return buffer;
    }

    /// <summary>Takes the bytes of an array the caller will not use again, then zeroes that array.</summary>
    public static SecretBuffer TakeAndZero(byte[] source)
    {
        ArgumentNullException.ThrowIfNull(source);
        try
        {
            return CopyOf(source);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(source);
        }
    }

    public int Length => _bytes.Length;

    public ReadOnlySpan<byte> Span
    {
        get
        {
            ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
            return _bytes;
        }
    }

    /// <summary>Read-only memory view, for asynchronous root-key calls. Do not keep it beyond the buffer's lifetime.</summary>
    public ReadOnlyMemory<byte> Memory
    {
        get
        {
            ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
            return _bytes;
        }
    }

    /// <summary>Writable view, for filling the buffer from a CSPRNG or a decrypt.</summary>
    public Span<byte> WritableSpan
    {
        get
        {
            ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
            return _bytes;
        }
    }

    public override string ToString() => $"SecretBuffer({_bytes.Length} bytes)";

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            CryptographicOperations.ZeroMemory(_bytes);
        }
    }
}
