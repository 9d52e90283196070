using System.Buffers;
using System.Security.Cryptography;
using System.Text.Json;

namespace KmsPlugin.Vault;

/// <summary>
/// A JSON request body written straight into one pinned array that is zeroed on dispose. Transit encrypt bodies carry
/// the KEK (base64), login bodies a JWT or an AppRole secret id: written this way they never pass through strings or
/// growing buffers that would leave copies behind on the managed heap.
/// </summary>
internal sealed class SecretJsonBody : IBufferWriter<byte>, IDisposable
{
    /// <summary>Far above any body the plugin sends (a 32-byte KEK, a few-KiB JWT).</summary>
    public const int Capacity = 64 * 1024;

    private readonly byte[] _buffer = GC.AllocateArray<byte>(Capacity, pinned: true);
    private int _written;

    /// <summary>Writes one JSON object through <paramref name="write"/>.</summary>
    public static SecretJsonBody Create(Action<Utf8JsonWriter> write)
    {
        ArgumentNullException.ThrowIfNull(write);
        var body = new SecretJsonBody();
        try
        {
            using (var writer = new Utf8JsonWriter(body))
            {
                writer.WriteStartObject();
                write(writer);
                writer.WriteEndObject();
            }

            return body;
        }
        catch
        {
            body.Dispose();
            throw;
        }
    }

    public ReadOnlyMemory<byte> Memory => _buffer.AsMemory(0, _written);

    public void Advance(int count) => _written += count;

    public Memory<byte> GetMemory(int sizeHint = 0)
    {
        EnsureRoom(sizeHint);
        return _buffer.AsMemory(_written);
    }

    public Span<byte> GetSpan(int sizeHint = 0)
    {
        EnsureRoom(sizeHint);
        return _buffer.AsSpan(_written);
    }

    public void Dispose() => CryptographicOperations.ZeroMemory(_buffer);

    private void EnsureRoom(int sizeHint)
    {
        if (Capacity - _written < Math.Max(sizeHint, 1))
        {
            throw new InvalidOperationException($"a Vault request body would exceed {Capacity} bytes");
        }
    }
}
