using System.Globalization;
using KmsPlugin.Storage.Format;

namespace KmsPlugin.Storage.Audit;

/// <summary>The human-readable report (<c>--output table</c>). Never prints a value, only keys, names and counts.</summary>
public static class AuditTableWriter
{
    public static void Write(AuditReport report, TextWriter output)
    {
        ArgumentNullException.ThrowIfNull(report);
        ArgumentNullException.ThrowIfNull(output);
        var options = report.Options;
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{report.Source}, prefix {(options.NormalizedPrefix.Length > 0 ? options.NormalizedPrefix : "/")}, revision {report.Revision}: {report.Scanned} keys in {report.Elapsed.TotalSeconds:0.0} s"));
        if (report.SnapshotRestarts > 0)
        {
            output.WriteLine($"note: etcd compacted the revision being read {report.SnapshotRestarts} time(s); later pages were read at newer revisions");
        }

        output.WriteLine();
        var resources = new TextTable("RESOURCE", "TOTAL", "PLAINTEXT", "AESCBC", "AESGCM", "SECRETBOX", "KMS-V1", "KMS-V2", "OTHER", "CORRUPTED");
        foreach (var resource in report.Resources.Values)
        {
            resources.Add(resource.Resource, N(resource.Total), N(Kind(resource, StoredValueKind.Plaintext)), N(Kind(resource, StoredValueKind.AesCbc)),
                N(Kind(resource, StoredValueKind.AesGcm)), N(Kind(resource, StoredValueKind.Secretbox)), N(Kind(resource, StoredValueKind.KmsV1)),
                N(Kind(resource, StoredValueKind.KmsV2)), N(Kind(resource, StoredValueKind.UnrecognizedEncrypted)), N(resource.Corrupted));
        }

        resources.WriteTo(output);

        var encryptedPrefixes = report.Resources.Values.SelectMany(r => r.ByPrefix.Where(p => p.Key != "plaintext").Select(p => (r.Resource, p.Key, p.Value))).ToList();
        if (encryptedPrefixes.Count > 0)
        {
            output.WriteLine();
            output.WriteLine("ENCRYPTED VALUES BY PREFIX (provider kind and key or provider name)");
            var prefixes = new TextTable("RESOURCE", "PREFIX", "VALUES");
            foreach (var (resource, prefix, count) in encryptedPrefixes)
            {
                prefixes.Add(resource, prefix, N(count));
            }

            prefixes.WriteTo(output);
        }

        var roles = report.KeyIds.Where(k => k.Provider is not null).ToDictionary(k => new StoredKeyId(k.Provider!, k.KeyId), k => k);
        var perResource = report.Resources.Values.SelectMany(r => r.KmsV2ByKeyId.Select(k => (r.Resource, k.Key, k.Value))).ToList();
        if (perResource.Count > 0)
        {
            output.WriteLine();
            output.WriteLine("KMS V2 VALUES BY KEY_ID");
            var table = new TextTable("RESOURCE", "PROVIDER", "KEY_ID", "STATUS", "OBJECTS", "HKDF-SEED", "AES-GCM-KEY");
            foreach (var (resource, keyId, counts) in perResource)
            {
                table.Add(resource, keyId.Provider, keyId.KeyId, AuditNames.Of(roles[keyId].Role), N(counts.Objects), N(counts.HkdfSeed), N(counts.AesGcmKey));
            }

            table.WriteTo(output);
        }

        if (report.KeyIds.Count > 0)
        {
            output.WriteLine();
            output.WriteLine("KEY_IDS (HKDF-SEED = DEK source type HKDF_SHA256_XNONCE_AES_GCM_SEED, AES-GCM-KEY = AES_GCM_KEY; DEK SOURCES = plugin Decrypts after an apiserver restart)");
            var headers = new List<string> { "KEY_ID", "KEY_ID_HASH", "STATUS", "ROOT_KEY", "PROVIDER", "OBJECTS", "DEK-SOURCES" };
            if (report.Verified)
            {
                headers.AddRange(["SOURCES-OK", "SOURCES-FAILED", "READABLE", "UNREADABLE", "NOT-SAMPLED"]);
            }

            var table = new TextTable([.. headers]);
            foreach (var keyId in report.KeyIds)
            {
                var cells = new List<string>
                {
                    keyId.KeyId, keyId.KeyIdHash, AuditNames.Of(keyId.Role), keyId.RootKeyName ?? "-", keyId.Provider ?? "-", N(keyId.Counts.Objects), N(keyId.DekSources),
                };
                if (report.Verified)
                {
                    var verify = keyId.Verify;
                    cells.AddRange(verify is null
                        ? ["-", "-", "-", "-", "-"]
                        : [N(verify.DekSourcesDecrypted), N(verify.DekSourcesFailed), N(verify.ObjectsReadable), N(verify.ObjectsUnreadable), N(verify.ObjectsNotSampled)]);
                }

                table.Add([.. cells]);
            }

            table.WriteTo(output);
        }

        if (report.Problems.Count > 0)
        {
            output.WriteLine();
            output.WriteLine($"PROBLEMS ({report.Problems.Count + report.ProblemsNotListed})");
            foreach (var problem in report.Problems)
            {
                output.WriteLine($"{problem.Key}: {problem.Problem}");
            }

            if (report.ProblemsNotListed > 0)
            {
                output.WriteLine($"... and {report.ProblemsNotListed} more");
            }
        }

        output.WriteLine();
        foreach (var line in Verdict(report))
        {
            output.WriteLine(line);
        }
    }

    /// <summary>The closing lines: what was required, and whether it holds.</summary>
    public static IEnumerable<string> Verdict(AuditReport report)
    {
        ArgumentNullException.ThrowIfNull(report);
        if (report.Options.RequireKeyId is { } required)
        {
            yield return report.NotUnderRequiredKeyId == 0
                ? $"require-key-id: OK: all {report.Scanned} values are KMS v2 values under {required} ({ApiserverKeyIdHash.Of(required)})"
                : $"require-key-id: FAILED: {report.NotUnderRequiredKeyId} of {report.Scanned} values are not under {required} ({ApiserverKeyIdHash.Of(required)})";
        }

        if (report.Verified)
        {
            var readable = report.KeyIds.Sum(k => k.Verify?.ObjectsReadable ?? 0);
            yield return report.Unreadable == 0 && report.Corrupted == 0
                ? $"verify: OK: {readable} sampled objects decrypted through the plugin, none unreadable"
                : $"verify: FAILED: {report.Unreadable} unreadable and {report.Corrupted} corrupted values ({readable} decrypted)";
        }

        if (report.Options.RequireKeyId is null && !report.Verified)
        {
            yield return report.Corrupted > 0
                ? $"audit: {report.Corrupted} corrupted values (listed above); use --verify or --require-key-id to make the exit code depend on it"
                : "audit: done";
        }
    }

    private static long Kind(ResourceAudit resource, StoredValueKind kind) => resource.ByKind.GetValueOrDefault(kind);

    private static string N(long value) => value.ToString(CultureInfo.InvariantCulture);
}
