using System.Reflection;
using System.Runtime.InteropServices;
using Net.Pkcs11Interop.HighLevelAPI;

namespace KmsPlugin.Pkcs11;

/// <summary>
/// Pkcs11Interop 5.3.0 loads PKCS#11 modules with <c>dlopen</c>/<c>dlsym</c>/<c>dlerror</c> P/Invoked from
/// <c>"libdl"</c>. glibc 2.34+ (Debian 12) ships only <c>libdl.so.2</c>, with no <c>libdl.so</c> unless libc6-dev is
/// installed, so the first module load fails with DllNotFoundException. This maps that one name to
/// <c>libdl.so.2</c> for the Pkcs11Interop assembly only (reference/feasibility.md section 1, pitfall 1).
/// </summary>
internal static class Pkcs11NativeResolver
{
    private const string LibDl = "libdl";
    private const string LibDlSoname = "libdl.so.2";
    private static readonly Lock Gate = new();
    private static bool s_registered;

    /// <summary>Registers the resolver once per process; safe to call from any thread, any number of times.</summary>
    public static void EnsureRegistered()
    {
        lock (Gate)
        {
            if (s_registered)
            {
                return;
            }

            try
            {
                NativeLibrary.SetDllImportResolver(typeof(Pkcs11InteropFactories).Assembly, Resolve);
            }
            catch (InvalidOperationException)
            {
                // The host already set a resolver for Pkcs11Interop (only one is allowed per assembly); it owns the
                // mapping then, and a missing libdl would still surface as a clear load error.
            }

            s_registered = true;
        }
    }

    private static IntPtr Resolve(string libraryName, Assembly assembly, DllImportSearchPath? searchPath)
    {
        if (libraryName == LibDl && NativeLibrary.TryLoad(LibDlSoname, out var handle))
        {
            return handle;
        }

        // Anything else (and libdl where a libdl.so exists after all): the runtime's default probing.
        return IntPtr.Zero;
    }
}
