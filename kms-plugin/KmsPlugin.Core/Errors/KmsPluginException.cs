namespace KmsPlugin.Core.Errors;

/// <summary>
/// The one exception type the plugin raises on purpose. <see cref="Exception.Message"/> is returned to the
/// apiserver, so it must name the problem but never contain key bytes, seeds, PINs or tokens.
/// </summary>
public sealed class KmsPluginException : Exception
{
    public KmsPluginException(KmsErrorKind kind, string message)
        : base(message)
    {
        Kind = kind;
    }

    public KmsPluginException(KmsErrorKind kind, string message, Exception innerException)
        : base(message, innerException)
    {
        Kind = kind;
    }

    public KmsErrorKind Kind { get; }

    public static KmsPluginException Invalid(string message) => new(KmsErrorKind.InvalidRequest, message);

    public static KmsPluginException Corrupt(string message) => new(KmsErrorKind.Corruption, message);
}
