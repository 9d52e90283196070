namespace KmsPlugin.Core.RootKeys;

/// <summary>What a configured root key does (docs/configuration.md, <c>rootKeys[].role</c>).</summary>
public enum RootKeyRole
{
    /// <summary>The first entry: wraps every new KEK and names the key_id.</summary>
    Primary,

    /// <summary>
    /// Also wraps every new KEK (escrow, a second region, or the target of a migration between backends); the wraps
    /// travel together in the annotation, so Decrypt still works when the primary's provider or region is lost.
    /// </summary>
    AdditionalWrap,

    /// <summary>Only unwraps KEKs that were wrapped under it (a former primary kept until storage is migrated).</summary>
    DecryptOnly,
}
