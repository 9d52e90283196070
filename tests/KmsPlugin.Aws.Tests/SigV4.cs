using System.Security.Cryptography;
using System.Text;

namespace KmsPlugin.Aws.Tests;

/// <summary>
/// Server-side check of AWS Signature Version 4 (AWS General Reference, "Create a signed AWS API request"): recomputes
/// the canonical request, string to sign and signature from the secret the fake issued, and compares. Proves the SDK
/// signed with the credentials the plugin obtained (static, STS web identity or Pod Identity), for region us-east-1
/// and service kms, over exactly the body the fake received.
/// </summary>
internal static class SigV4
{
    public sealed record Problem(string Code, string Message);

    public static Problem? Verify(HttpRequest request, string body, string service, string region,
        Func<string, (string Secret, string? SessionToken)?> lookup)
    {
        var authorization = request.Headers.Authorization.ToString();
        const string algorithm = "AWS4-HMAC-SHA256";
        if (!authorization.StartsWith(algorithm + " ", StringComparison.Ordinal))
        {
            return new Problem("MissingAuthenticationTokenException", "Missing Authentication Token");
        }

        var parts = authorization[(algorithm.Length + 1)..].Split(',', StringSplitOptions.TrimEntries)
            .Select(p => p.Split('=', 2)).Where(p => p.Length == 2).ToDictionary(p => p[0], p => p[1], StringComparer.Ordinal);
        if (!parts.TryGetValue("Credential", out var credential) || !parts.TryGetValue("SignedHeaders", out var signedHeaders)
            || !parts.TryGetValue("Signature", out var signature))
        {
            return new Problem("IncompleteSignatureException", "Authorization header is incomplete");
        }

        var scope = credential.Split('/');
        if (scope.Length != 5 || scope[2] != region || scope[3] != service || scope[4] != "aws4_request")
        {
            return new Problem("InvalidSignatureException", $"Credential should be scoped to {region}/{service}, got {credential}");
        }

        var amzDate = request.Headers["X-Amz-Date"].ToString();
        if (amzDate.Length != 16 || !amzDate.StartsWith(scope[1], StringComparison.Ordinal))
        {
            return new Problem("IncompleteSignatureException", "X-Amz-Date is missing or does not match the credential scope");
        }

        if (lookup(scope[0]) is not { } secret)
        {
            return new Problem("UnrecognizedClientException", "The security token included in the request is invalid.");
        }

        if (secret.SessionToken is not null && request.Headers["X-Amz-Security-Token"].ToString() != secret.SessionToken)
        {
            return new Problem("UnrecognizedClientException", "The security token included in the request is invalid.");
        }

        var payloadHash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(body)));
        var claimed = request.Headers["X-Amz-Content-SHA256"].ToString();
        if (claimed.Length > 0 && claimed != payloadHash)
        {
            return new Problem("InvalidSignatureException", "X-Amz-Content-SHA256 does not match the body");
        }

        var canonical = new StringBuilder()
            .Append(request.Method).Append('\n')
            .Append(request.Path.HasValue ? request.Path.Value : "/").Append('\n')
            .Append(request.QueryString.HasValue ? request.QueryString.Value![1..] : "").Append('\n');
        foreach (var name in signedHeaders.Split(';'))
        {
            var value = string.Join(',', request.Headers[name].Select(v => string.Join(' ', (v ?? "").Split(' ', StringSplitOptions.RemoveEmptyEntries))));
            canonical.Append(name).Append(':').Append(value.Trim()).Append('\n');
        }

        canonical.Append('\n').Append(signedHeaders).Append('\n').Append(payloadHash);
        var stringToSign = $"{algorithm}\n{amzDate}\n{scope[1]}/{region}/{service}/aws4_request\n"
            + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(canonical.ToString())));
        var key = HMACSHA256.HashData(Encoding.UTF8.GetBytes("AWS4" + secret.Secret), Encoding.UTF8.GetBytes(scope[1]));
        key = HMACSHA256.HashData(key, Encoding.UTF8.GetBytes(region));
        key = HMACSHA256.HashData(key, Encoding.UTF8.GetBytes(service));
        key = HMACSHA256.HashData(key, "aws4_request"u8);
        var expected = Convert.ToHexStringLower(HMACSHA256.HashData(key, Encoding.UTF8.GetBytes(stringToSign)));
        return CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(expected), Encoding.ASCII.GetBytes(signature))
            ? null
            : new Problem("InvalidSignatureException", "The request signature we calculated does not match the signature you provided.");
    }
}
