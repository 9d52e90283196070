namespace KmsPlugin.Core.RootKeys;

/// <summary>The kinds of remote call a root key makes, as an <see cref="IRootKeyCallPolicy"/> sees them.</summary>
public enum RootKeyOperation
{
    /// <summary><see cref="IRootKey.WrapAsync"/>.</summary>
    Wrap,

    /// <summary><see cref="IRootKey.UnwrapAsync"/>.</summary>
    Unwrap,

    /// <summary>
    /// <see cref="IVersionedRootKey.ReadLatestVersionAsync"/>: a metadata call. Its success does not prove the key
    /// usable (metadata can be readable while wraps are denied).
    /// </summary>
    ReadVersion,
}
