using KmsPlugin.Core.Errors;
using Net.Pkcs11Interop.Common;
using Net.Pkcs11Interop.HighLevelAPI;

namespace KmsPlugin.Pkcs11;

/// <summary>
/// Loads each PKCS#11 module once per process and shares it between root keys, reference-counted.
/// </summary>
/// <remarks>
/// C_Initialize may be called once per process until C_Finalize (PKCS#11 v2.40 section 5.4), and C_Finalize tears
/// down every session of the process — so two root keys on one module must share one initialisation, and the
/// module is finalised only when the last of them is disposed. Modules are keyed by their resolved file path:
/// <c>/usr/lib/softhsm/libsofthsm2.so</c> is a symlink to the multiarch file, and dlopen hands both names the same
/// module, so they must share one entry too.
/// </remarks>
internal static class Pkcs11ModuleRegistry
{
    private static readonly Lock Gate = new();
    private static readonly Dictionary<string, Pkcs11Module> Modules = new(StringComparer.Ordinal);

    /// <exception cref="KmsPluginException">RootKeyUnavailable when the module is missing or will not load.</exception>
    public static Pkcs11Module Acquire(string libraryPath, string rootKeyName)
    {
        var path = Resolve(libraryPath, rootKeyName);
        lock (Gate)
        {
            if (Modules.TryGetValue(path, out var module))
            {
                module.References++;
                return module;
            }

            module = Load(path, rootKeyName);
            module.References = 1;
            Modules.Add(path, module);
            return module;
        }
    }

    public static void Release(Pkcs11Module module)
    {
        ArgumentNullException.ThrowIfNull(module);
        lock (Gate)
        {
            if (--module.References > 0)
            {
                return;
            }

            Modules.Remove(module.Path);
            module.Unload();
        }
    }

    /// <summary>For tests: whether the module at this resolved path is currently initialised.</summary>
    internal static bool IsLoaded(string libraryPath)
    {
        lock (Gate)
        {
            return Modules.ContainsKey(ResolvePath(libraryPath));
        }
    }

    private static string Resolve(string libraryPath, string rootKeyName)
    {
        try
        {
            if (!File.Exists(libraryPath))
            {
                throw new KmsPluginException(KmsErrorKind.RootKeyUnavailable,
                    $"pkcs11 root key '{rootKeyName}': option library {libraryPath} does not exist (install the HSM vendor's PKCS#11 module there)");
            }

            return ResolvePath(libraryPath);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new KmsPluginException(KmsErrorKind.RootKeyUnavailable,
                $"pkcs11 root key '{rootKeyName}': cannot resolve option library {libraryPath}: {e.Message}", e);
        }
    }

    internal static string ResolvePath(string libraryPath) =>
        File.ResolveLinkTarget(libraryPath, returnFinalTarget: true)?.FullName ?? Path.GetFullPath(libraryPath);

    private static Pkcs11Module Load(string path, string rootKeyName)
    {
        Pkcs11NativeResolver.EnsureRegistered();
        var factories = new Pkcs11InteropFactories();
        IPkcs11Library? library = null;
        try
        {
            // MultiThreaded = CK_C_INITIALIZE_ARGS with CKF_OS_LOCKING_OK: the module may be called from many threads.
            library = factories.Pkcs11LibraryFactory.LoadPkcs11Library(factories, path, AppType.MultiThreaded);

            // Decrypt goes through the low-level API (see Pkcs11RootKey.DecryptInto), whose types depend on the
            // platform's CK_ULONG; Pkcs11Interop picks the "80" flavour for 64-bit Unix, which is all we run on.
            if (library is not Net.Pkcs11Interop.HighLevelAPI80.Pkcs11Library)
            {
                throw new KmsPluginException(KmsErrorKind.RootKeyUnavailable,
                    $"pkcs11 root key '{rootKeyName}': the pkcs11 provider needs a 64-bit Linux process (got {library.GetType().Namespace})");
            }

            var lowLevel = new Net.Pkcs11Interop.LowLevelAPI80.Pkcs11Library(path);
            return new Pkcs11Module(path, factories, library, lowLevel);
        }
        catch (Exception e) when (e is UnmanagedException or DllNotFoundException or EntryPointNotFoundException)
        {
            library?.Dispose();
            throw new KmsPluginException(KmsErrorKind.RootKeyUnavailable,
                $"pkcs11 root key '{rootKeyName}': cannot load option library {path} as a PKCS#11 module: {e.Message}", e);
        }
        catch (Pkcs11Exception e)
        {
            library?.Dispose();
            throw new KmsPluginException(KmsErrorKind.RootKeyUnavailable,
                $"pkcs11 root key '{rootKeyName}': option library {path}: {e.Method} failed: {e.RV}", e);
        }
        catch
        {
            library?.Dispose();
            throw;
        }
    }
}
