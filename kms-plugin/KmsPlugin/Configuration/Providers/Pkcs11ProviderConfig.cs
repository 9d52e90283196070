using KmsPlugin.Pkcs11;

namespace KmsPlugin.Configuration.Providers;

/// <summary><c>provider: pkcs11</c> — an AES-256 key in an HSM token (hsm/README.md).</summary>
public sealed record Pkcs11RootKeyConfig(string Library, string TokenLabel, string? KeyLabel, string? KeyId, string PinFile, int SessionPoolSize);

public static class Pkcs11ProviderConfig
{
    public static RootKeyProvider Provider { get; } = new("pkcs11", Parse,
        (config, random) =>
        {
            var settings = config.SettingsAs<Pkcs11RootKeyConfig>();
            return Pkcs11RootKey.Open(new Pkcs11RootKeyOptions
            {
                Name = config.Name,
                Library = settings.Library,
                TokenLabel = settings.TokenLabel,
                KeyLabel = settings.KeyLabel,
                KeyId = settings.KeyId,
                PinFile = settings.PinFile,
                SessionPoolSize = settings.SessionPoolSize,
            }, random);
        });

    private static Pkcs11RootKeyConfig Parse(ConfigNode pkcs11, string baseDirectory)
    {
        pkcs11.AllowOnly("library", "tokenLabel", "keyLabel", "keyId", "pinFile", "sessionPoolSize");
        var library = pkcs11.Text("library") ?? throw new ConfigException(pkcs11.Field("library"), "is required (e.g. /usr/lib/softhsm/libsofthsm2.so)");
        if (!Path.IsPathRooted(library))
        {
            throw new ConfigException(pkcs11.Field("library"), "must be an absolute path: a relative name would be searched for in the library path");
        }

        var token = pkcs11.Text("tokenLabel") ?? throw new ConfigException(pkcs11.Field("tokenLabel"), "is required (slot ids change; tokens are found by label)");
        var keyLabel = pkcs11.Text("keyLabel");
        var keyId = pkcs11.Text("keyId");
        if (keyLabel is null && keyId is null)
        {
            throw new ConfigException(pkcs11.Field("keyLabel"), "keyLabel or keyId (CKA_ID in hex) is required");
        }

        if (keyId is not null && (keyId.Length % 2 != 0 || !keyId.All(char.IsAsciiHexDigit)))
        {
            throw new ConfigException(pkcs11.Field("keyId"), "must be the CKA_ID in hex, e.g. 01 or a1b2");
        }

        var pinFile = pkcs11.Text("pinFile") ?? throw new ConfigException(pkcs11.Field("pinFile"), "is required: the user PIN is read from a file, never from the command line or this file");
        return new Pkcs11RootKeyConfig(library, token, keyLabel, keyId, Path.GetFullPath(pinFile, baseDirectory),
            (int)pkcs11.WholeNumber("sessionPoolSize", 4, 1, 64));
    }
}
