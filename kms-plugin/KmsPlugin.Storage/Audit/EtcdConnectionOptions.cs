namespace KmsPlugin.Storage.Audit;

/// <summary>
/// How to reach etcd, with the same flags as etcdctl and kube-apiserver (<c>--etcd-servers</c>,
/// <c>--etcd-cafile</c>, <c>--etcd-certfile</c>, <c>--etcd-keyfile</c>).
/// </summary>
/// <param name="Endpoints">One or more <c>http(s)://host:port</c> URLs.</param>
/// <param name="CaCertFile">PEM CA bundle that signs etcd's serving certificate; null = the system trust store.</param>
/// <param name="CertFile">PEM client certificate, for etcd's <c>--client-cert-auth</c>.</param>
/// <param name="KeyFile">PEM private key of <paramref name="CertFile"/>.</param>
/// <param name="RequestTimeout">Deadline of one range read.</param>
public sealed record EtcdConnectionOptions(IReadOnlyList<Uri> Endpoints, string? CaCertFile, string? CertFile, string? KeyFile, TimeSpan RequestTimeout)
{
    /// <summary>Parses a comma-separated endpoint list as etcdctl's <c>--endpoints</c>; errors say what is wrong.</summary>
    public static IReadOnlyList<Uri> ParseEndpoints(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var endpoints = new List<Uri>();
        foreach (var part in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (!Uri.TryCreate(part, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https") || uri.Host.Length == 0)
            {
                throw new ArgumentException($"etcd endpoint \"{part}\" is not an http(s)://host:port URL");
            }

            if (uri.AbsolutePath is not ("/" or "") || uri.Query.Length > 0 || uri.UserInfo.Length > 0)
            {
                throw new ArgumentException($"etcd endpoint \"{part}\" must be just scheme, host and port");
            }

            // Without a port, etcd's client port (2379), not the scheme's 80/443.
            if (!System.Text.RegularExpressions.Regex.IsMatch(part, @":[0-9]+/?$"))
            {
                uri = new UriBuilder(uri) { Port = 2379 }.Uri;
            }

            endpoints.Add(uri);
        }

        if (endpoints.Count == 0)
        {
            throw new ArgumentException("at least one etcd endpoint is required");
        }

        if (endpoints.Select(e => e.Scheme).Distinct().Count() > 1)
        {
            throw new ArgumentException("etcd endpoints must all be http or all https");
        }

        return endpoints;
    }
}
