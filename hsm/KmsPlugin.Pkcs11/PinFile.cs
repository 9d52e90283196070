using System.Security.Cryptography;
using KmsPlugin.Core.Errors;
using KmsPlugin.Core.Security;

namespace KmsPlugin.Pkcs11;

/// <summary>
/// Reads the token's user PIN from its file. The PIN lives only in a pinned array (so the GC leaves no moved copy)
/// that is zeroed on dispose; it never becomes a string, and no message below contains it.
/// </summary>
internal sealed class PinFile : IDisposable
{
    /// <summary>Far above any real PIN (PKCS#11 tokens report ulMaxPinLen, typically 255 or less).</summary>
    public const int MaxBytes = 1024;

    private PinFile(byte[] bytes)
    {
        Bytes = bytes;
    }

    /// <summary>The PIN bytes exactly as C_Login gets them. Valid until <see cref="Dispose"/>.</summary>
    public byte[] Bytes { get; }

    /// <exception cref="KmsPluginException">
    /// RootKeyDenied when the file is readable by group/others, owned by another user, in a directory others can
    /// write (<see cref="FileSafety.RequireSecretFile"/>), empty or too large (a retry will not fix it);
    /// RootKeyUnavailable when it is missing or cannot be read.
    /// </exception>
    public static PinFile Read(string path, string rootKeyName)
    {
        byte[]? raw = null;
        try
        {
            var info = new FileInfo(path);
            if (!info.Exists)
            {
                throw new KmsPluginException(KmsErrorKind.RootKeyUnavailable,
                    $"pkcs11 root key '{rootKeyName}': pinFile {path} does not exist");
            }

            // Same rule as the local root key file: a PIN readable by other accounts is a PIN already disclosed, and
            // one they can replace (their file, their directory, their symlink) makes the plugin try a PIN of their
            // choosing — which counts down the token's retry counter.
            FileSafety.RequireSecretFile(path, $"pkcs11 root key '{rootKeyName}'", "pinFile");

            if (info.Length > MaxBytes)
            {
                throw new KmsPluginException(KmsErrorKind.RootKeyDenied,
                    $"pkcs11 root key '{rootKeyName}': pinFile {path} is {info.Length} bytes; a PIN file holds only the PIN");
            }

            using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read);
            raw = GC.AllocateArray<byte>((int)info.Length, pinned: true);
            var read = 0;
            while (read < raw.Length)
            {
                var n = RandomAccess.Read(handle, raw.AsSpan(read), read);
                if (n == 0)
                {
                    break;
                }

                read += n;
            }

            // `echo PIN > file` and editors add a trailing newline; a PIN itself never ends in CR or LF.
            var length = read;
            while (length > 0 && raw[length - 1] is (byte)'\n' or (byte)'\r')
            {
                length--;
            }

            if (length == 0)
            {
                throw new KmsPluginException(KmsErrorKind.RootKeyDenied, $"pkcs11 root key '{rootKeyName}': pinFile {path} is empty");
            }

            // C_Login takes the whole array (Pkcs11Interop passes its Length), so copy into an exact-length pinned array.
            var pin = GC.AllocateArray<byte>(length, pinned: true);
            raw.AsSpan(0, length).CopyTo(pin);
            return new PinFile(pin);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new KmsPluginException(KmsErrorKind.RootKeyUnavailable,
                $"pkcs11 root key '{rootKeyName}': cannot read pinFile {path}: {e.Message}", e);
        }
        finally
        {
            if (raw is not null)
            {
                CryptographicOperations.ZeroMemory(raw);
            }
        }
    }

    public void Dispose() => CryptographicOperations.ZeroMemory(Bytes);
}
