using Net.Pkcs11Interop.Common;
using Net.Pkcs11Interop.HighLevelAPI;

namespace KmsPlugin.Pkcs11;

/// <summary>Session helpers shared by the pool and the token.</summary>
internal static class Pkcs11Sessions
{
    /// <summary>
    /// C_CloseSession, ignoring failure: the sessions we close on error paths are usually already dead
    /// (CKR_SESSION_HANDLE_INVALID, CKR_DEVICE_REMOVED), and there is nothing more to do about them.
    /// </summary>
    public static void CloseQuietly(ISession? session)
    {
        if (session is null)
        {
            return;
        }

        try
        {
            session.Dispose();
        }
        catch (Pkcs11Exception)
        {
            // already gone
        }
        catch (ObjectDisposedException)
        {
            // already closed
        }
    }

    /// <summary>Whether the session is logged in as the user (login state is per application, not per session).</summary>
    public static bool IsUserSession(ISession session) =>
        session.GetSessionInfo().State is CKS.CKS_RO_USER_FUNCTIONS or CKS.CKS_RW_USER_FUNCTIONS;
}
