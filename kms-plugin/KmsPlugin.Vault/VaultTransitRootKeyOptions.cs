using System.Globalization;
using System.Net;
using System.Text.RegularExpressions;
using KmsPlugin.Core.Errors;
using KmsPlugin.Core.RootKeys;

namespace KmsPlugin.Vault;

/// <summary>
/// Configuration of one <c>provider: vault</c> root key (the <c>vault:</c> block of a <c>rootKeys</c> entry): a
/// Transit key in HashiCorp Vault or OpenBao. No secret appears here: tokens, JWTs and AppRole secret ids are read
/// from files.
/// </summary>
public sealed partial record VaultTransitRootKeyOptions
{
    public static readonly TimeSpan DefaultRequestTimeout = TimeSpan.FromSeconds(5);
    public static readonly TimeSpan DefaultOpenTimeout = TimeSpan.FromSeconds(30);

    /// <summary>The operator's name for this root key (<c>rootKeys[].name</c>); for logs and errors only.</summary>
    public required string Name { get; init; }

    /// <summary>Vault's address (<c>address</c>), e.g. <c>https://vault.example.com:8200</c>. Plain http only to loopback (a local Vault Agent).</summary>
    public required Uri Address { get; init; }

    /// <summary>Vault Enterprise / OpenBao namespace (<c>namespace</c>), sent as X-Vault-Namespace on every request.</summary>
    public string? Namespace { get; init; }

    /// <summary>Where the Transit engine is mounted (<c>mount</c>).</summary>
    public string Mount { get; init; } = "transit";

    /// <summary>The Transit key's name (<c>key</c>).</summary>
    public required string KeyName { get; init; }

    /// <summary>
    /// The key version to encrypt with (<c>keyVersion</c>); null means the latest version, read at open and then followed
    /// (<see cref="KmsPlugin.Core.RootKeys.IVersionedRootKey"/>). Pinned or not, the key unwraps what every version wrapped.
    /// </summary>
    public int? KeyVersion { get; init; }

    public required VaultAuthOptions Auth { get; init; }

    /// <summary>PEM file of the CA certificate(s) that sign Vault's server certificate (<c>caFile</c>), trusted in addition to the system store (as for every remote provider).</summary>
    public string? CaFile { get; init; }

    /// <summary>Bound on each HTTP request to Vault (<c>requestTimeout</c>).</summary>
    public TimeSpan RequestTimeout { get; init; } = DefaultRequestTimeout;

    /// <summary>Bound on logging in and reading the key at open.</summary>
    public TimeSpan OpenTimeout { get; init; } = DefaultOpenTimeout;

    /// <summary>Retries of throttled (429, honouring Retry-After) and transient failures, on the caller's token.</summary>
    public RetryPolicy Retry { get; init; } = RetryPolicy.Default;

    /// <summary>Clock for token leases and retry waits (tests inject a fake one).</summary>
    public TimeProvider Time { get; init; } = TimeProvider.System;

    public void Validate()
    {
        if (string.IsNullOrWhiteSpace(Name))
        {
            throw Invalid("name", "must not be empty");
        }

        ArgumentNullException.ThrowIfNull(Address);
        if (AddressProblem(Address) is { } problem)
        {
            throw Invalid("address", problem);
        }

        if (Namespace is not null && !PathPattern().IsMatch(Namespace.Trim('/')))
        {
            throw Invalid("namespace", $"'{Namespace}' is not a namespace path such as team-a or admin/team-a");
        }

        if (!PathPattern().IsMatch(Mount))
        {
            throw Invalid("mount", $"'{Mount}' is not a mount path such as transit or kms/transit");
        }

        if (!NamePattern().IsMatch(KeyName))
        {
            throw Invalid("key", $"'{KeyName}' is not a Transit key name (letters, digits, '-', '_', '.')");
        }

        if (KeyVersion is < 1)
        {
            throw Invalid("keyVersion", $"must be 1 or more, got {KeyVersion.Value.ToString(CultureInfo.InvariantCulture)}");
        }

        ArgumentNullException.ThrowIfNull(Auth);
        Auth.Validate(Invalid);

        if (CaFile is not null && string.IsNullOrWhiteSpace(CaFile))
        {
            throw Invalid("caFile", "must not be empty when set");
        }

        if (RequestTimeout <= TimeSpan.Zero || RequestTimeout > TimeSpan.FromMinutes(5))
        {
            throw Invalid("requestTimeout", "must be more than 0 and at most 5m");
        }

        if (OpenTimeout <= TimeSpan.Zero)
        {
            throw Invalid("openTimeout", "must be more than 0");
        }

        ArgumentNullException.ThrowIfNull(Retry);
        ArgumentNullException.ThrowIfNull(Time);
    }

    /// <summary>Why an address is not acceptable, or null. Transit encrypt sends the KEK in the request body, so only TLS will do, except on loopback.</summary>
    public static string? AddressProblem(Uri address)
    {
        ArgumentNullException.ThrowIfNull(address);
        if (!address.IsAbsoluteUri || !string.IsNullOrEmpty(address.Query) || !string.IsNullOrEmpty(address.Fragment)
            || (address.AbsolutePath != "/" && address.AbsolutePath.Length > 0))
        {
            return $"must be the server's base URL such as https://vault.example.com:8200, got '{address}'";
        }

        if (address.Scheme == Uri.UriSchemeHttps)
        {
            return null;
        }

        var loopback = address.IsLoopback || (IPAddress.TryParse(address.Host.Trim('[', ']'), out var ip) && IPAddress.IsLoopback(ip));
        return address.Scheme == Uri.UriSchemeHttp && loopback
            ? null
            : $"must be https:// (plain http is allowed only to a loopback address, e.g. a local Vault Agent), got '{address}'";
    }

    /// <summary>Key of <see cref="Exception.Data"/> naming the offending option (e.g. <c>credentials.roleArn</c>), so the
    /// configuration loader can report the YAML field.</summary>
    public const string OptionDataKey = "KmsPlugin.Option";

    /// <summary>Key of <see cref="Exception.Data"/> holding the problem without the root key's name.</summary>
    public const string ProblemDataKey = "KmsPlugin.Problem";

    internal KmsPluginException Invalid(string option, string problem)
    {
        var error = new KmsPluginException(KmsErrorKind.RootKeyDenied, $"vault root key '{Name}': option {option} {problem}");
        error.Data[OptionDataKey] = option;
        error.Data[ProblemDataKey] = problem;
        return error;
    }

    [GeneratedRegex(@"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$", RegexOptions.CultureInvariant)]
    internal static partial Regex PathPattern();

    [GeneratedRegex(@"^[A-Za-z0-9_.-]+$", RegexOptions.CultureInvariant)]
    private static partial Regex NamePattern();
}

/// <summary>How the plugin gets a Vault token (<c>auth.method</c>).</summary>
public enum VaultAuthMethod
{
    /// <summary>A token in a file (e.g. a Vault Agent sink), re-read when the file changes. Its renewal is the writer's job.</summary>
    Token,

    /// <summary>Kubernetes auth: <c>POST /v1/auth/{mount}/login</c> with a role and the service-account JWT from a file.</summary>
    Kubernetes,

    /// <summary>JWT/OIDC auth: <c>POST /v1/auth/{mount}/login</c> with a role and a JWT from a file.</summary>
    Jwt,

    /// <summary>AppRole: <c>POST /v1/auth/{mount}/login</c> with a role id and a secret id from a file.</summary>
    AppRole,
}

/// <summary>The <c>auth:</c> block of a vault root key.</summary>
public sealed record VaultAuthOptions
{
    public const string DefaultServiceAccountTokenFile = "/var/run/secrets/kubernetes.io/serviceaccount/token";

    public required VaultAuthMethod Method { get; init; }

    /// <summary>Auth mount path (<c>mount</c>); defaults to <c>kubernetes</c>, <c>jwt</c> or <c>approle</c>.</summary>
    public string? Mount { get; init; }

    /// <summary>Role name (<c>role</c>) for kubernetes and jwt.</summary>
    public string? Role { get; init; }

    /// <summary>
    /// <c>tokenFile</c>: for <c>token</c>, the file holding the Vault token; for <c>kubernetes</c>/<c>jwt</c>, the file
    /// holding the JWT (default: the pod's service-account token), read again on every login.
    /// </summary>
    public string? TokenFile { get; init; }

    /// <summary>AppRole role id (<c>roleId</c>); not secret on its own. Or <see cref="RoleIdFile"/>.</summary>
    public string? RoleId { get; init; }

    /// <summary>File holding the AppRole role id (<c>roleIdFile</c>).</summary>
    public string? RoleIdFile { get; init; }

    /// <summary>File holding the AppRole secret id (<c>secretIdFile</c>), read again on every login.</summary>
    public string? SecretIdFile { get; init; }

    /// <summary>The auth mount actually used.</summary>
    public string EffectiveMount => Mount ?? Method switch
    {
        VaultAuthMethod.Kubernetes => "kubernetes",
        VaultAuthMethod.Jwt => "jwt",
        VaultAuthMethod.AppRole => "approle",
        _ => "token",
    };

    /// <summary>The JWT or token file actually used.</summary>
    public string? EffectiveTokenFile => TokenFile ?? (Method == VaultAuthMethod.Kubernetes ? DefaultServiceAccountTokenFile : null);

    internal void Validate(Func<string, string, KmsPluginException> invalid)
    {
        if (Mount is not null && !VaultTransitRootKeyOptions.PathPattern().IsMatch(Mount))
        {
            throw invalid("auth.mount", $"'{Mount}' is not a mount path");
        }

        switch (Method)
        {
            case VaultAuthMethod.Token:
                if (string.IsNullOrWhiteSpace(TokenFile))
                {
                    throw invalid("auth.tokenFile", "is required for method token (the token is read from a file, never from the configuration)");
                }

                Reject(invalid, "method token", (Role, "role"), (RoleId, "roleId"), (RoleIdFile, "roleIdFile"), (SecretIdFile, "secretIdFile"), (Mount, "mount"));
                break;

            case VaultAuthMethod.Kubernetes or VaultAuthMethod.Jwt:
                if (string.IsNullOrWhiteSpace(Role))
                {
                    throw invalid("auth.role", $"is required for method {(Method == VaultAuthMethod.Jwt ? "jwt" : "kubernetes")}");
                }

                if (Method == VaultAuthMethod.Jwt && string.IsNullOrWhiteSpace(TokenFile))
                {
                    throw invalid("auth.tokenFile", "is required for method jwt (the file holding the JWT)");
                }

                Reject(invalid, "this method", (RoleId, "roleId"), (RoleIdFile, "roleIdFile"), (SecretIdFile, "secretIdFile"));
                break;

            case VaultAuthMethod.AppRole:
                if (string.IsNullOrWhiteSpace(RoleId) == string.IsNullOrWhiteSpace(RoleIdFile))
                {
                    throw invalid("auth.roleId", "exactly one of roleId and roleIdFile is required for method approle");
                }

                if (string.IsNullOrWhiteSpace(SecretIdFile))
                {
                    throw invalid("auth.secretIdFile", "is required for method approle (the secret id is read from a file)");
                }

                Reject(invalid, "method approle", (Role, "role"), (TokenFile, "tokenFile"));
                break;

            default:
                throw invalid("auth.method", "must be token, kubernetes, jwt or approle");
        }
    }

    private static void Reject(Func<string, string, KmsPluginException> invalid, string method, params (string? Value, string Field)[] fields)
    {
        foreach (var (value, field) in fields)
        {
            if (value is not null)
            {
                throw invalid("auth." + field, $"does not apply to {method}");
            }
        }
    }
}
