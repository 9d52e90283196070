using Net.Pkcs11Interop.HighLevelAPI;
using LowLevelLibrary = Net.Pkcs11Interop.LowLevelAPI80.Pkcs11Library;

namespace KmsPlugin.Pkcs11;

/// <summary>
/// One loaded and initialised PKCS#11 module (obtained from <see cref="Pkcs11ModuleRegistry"/>), and the tokens
/// root keys use through it.
/// </summary>
internal sealed class Pkcs11Module
{
    private readonly Lock _gate = new();
    private readonly Dictionary<string, Pkcs11Token> _tokens = new(StringComparer.Ordinal);

    internal Pkcs11Module(string path, Pkcs11InteropFactories factories, IPkcs11Library library, LowLevelLibrary lowLevel)
    {
        Path = path;
        Factories = factories;
        Library = library;
        LowLevel = lowLevel;
    }

    /// <summary>The resolved file path: the registry key, and the name used in messages.</summary>
    public string Path { get; }

    public Pkcs11InteropFactories Factories { get; }

    public IPkcs11Library Library { get; }

    /// <summary>
    /// A second, low-level view of the same module (dlopen returns the same handle, C_GetFunctionList the same
    /// function table; it does not C_Initialize again). Used where the high-level API would leave copies of
    /// plaintext behind (see Pkcs11RootKey.DecryptInto).
    /// </summary>
    public LowLevelLibrary LowLevel { get; }

    /// <summary>Root keys using this module; guarded by the registry's lock.</summary>
    internal int References { get; set; }

    /// <summary>Finds the token by label (once per module; shared after that) and takes a reference on it.</summary>
    public Pkcs11Token AcquireToken(string label, string rootKeyName)
    {
        lock (_gate)
        {
            if (!_tokens.TryGetValue(label, out var token))
            {
                token = new Pkcs11Token(this, label, Pkcs11Token.FindSlot(this, label, rootKeyName));
                _tokens.Add(label, token);
            }

            token.References++;
            return token;
        }
    }

    public void ReleaseToken(Pkcs11Token token)
    {
        ArgumentNullException.ThrowIfNull(token);
        lock (_gate)
        {
            if (--token.References > 0)
            {
                return;
            }

            _tokens.Remove(token.Label);
            token.Close();
        }
    }

    /// <summary>C_Finalize and unload. Only the registry calls this, after the last root key let go.</summary>
    internal void Unload()
    {
        lock (_gate)
        {
            foreach (var token in _tokens.Values)
            {
                token.Close();
            }

            _tokens.Clear();
        }

        LowLevel.Dispose();
        Library.Dispose();
    }
}
