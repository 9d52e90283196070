using System.Collections.Frozen;
using System.Text;
using KmsPlugin.Core.Errors;

namespace KmsPlugin.Observability;

/// <summary>
/// The <c>outcome</c> label of a root key call: <c>ok</c>, the typed error's <see cref="KmsErrorKind"/> in snake case
/// (<c>throttled</c>, <c>root_key_unavailable</c>, <c>root_key_denied</c>, <c>corruption</c>...), <c>cancelled</c> when the
/// plugin stopped waiting (the caller's deadline or <c>rootKeyTimeout</c>, which reach the provider as one token),
/// <c>timeout</c> when the provider's own client gave up, and <c>internal</c> for an untyped exception (a bug).
/// </summary>
internal static class RootKeyOutcomes
{
    public const string Ok = "ok";
    public const string Cancelled = "cancelled";
    public const string Timeout = "timeout";
    public const string Internal = "internal";

    private static readonly FrozenDictionary<KmsErrorKind, string> Kinds = Enum.GetValues<KmsErrorKind>().ToFrozenDictionary(k => k, k => SnakeCase(k.ToString()));

    public static string Of(Exception exception, CancellationToken cancellationToken) => exception switch
    {
        KmsPluginException typed => Kinds.GetValueOrDefault(typed.Kind, Internal),
        OperationCanceledException when cancellationToken.IsCancellationRequested => Cancelled,
        OperationCanceledException or TimeoutException => Timeout,
        _ => Internal,
    };

    /// <summary><c>RootKeyUnavailable</c> → <c>root_key_unavailable</c> (Prometheus label values are conventionally snake case).</summary>
    internal static string SnakeCase(string name)
    {
        var text = new StringBuilder(name.Length + 4);
        for (var i = 0; i < name.Length; i++)
        {
            if (char.IsUpper(name[i]) && i > 0)
            {
                text.Append('_');
            }

            text.Append(char.ToLowerInvariant(name[i]));
        }

        return text.ToString();
    }
}
