using System.Text.Json;
using KmsPlugin.Storage.Format;

namespace KmsPlugin.Storage.Audit;

/// <summary>
/// The machine-readable report (<c>--output json</c>), for CronJobs and dashboards. The shape is documented in
/// docs/rotation.md; every count is present even when zero, so consumers need no defaults.
/// </summary>
public static class AuditJsonWriter
{
    public static void Write(AuditReport report, Stream output)
    {
        ArgumentNullException.ThrowIfNull(report);
        ArgumentNullException.ThrowIfNull(output);
        using var json = new Utf8JsonWriter(output, new JsonWriterOptions { Indented = true });
        json.WriteStartObject();
        json.WriteString("source", report.Source);
        json.WriteString("prefix", report.Options.NormalizedPrefix.Length > 0 ? report.Options.NormalizedPrefix : "/");
        json.WriteNumber("revision", report.Revision);
        json.WriteNumber("snapshotRestarts", report.SnapshotRestarts);
        json.WriteNumber("scanned", report.Scanned);
        json.WriteNumber("elapsedSeconds", Math.Round(report.Elapsed.TotalSeconds, 3));

        json.WriteStartArray("resources");
        foreach (var resource in report.Resources.Values)
        {
            json.WriteStartObject();
            json.WriteString("resource", resource.Resource);
            json.WriteNumber("total", resource.Total);
            json.WriteNumber("plaintext", resource.Plaintext);
            json.WriteNumber("corrupted", resource.Corrupted);
            json.WriteStartObject("kinds");
            foreach (var kind in Enum.GetValues<StoredValueKind>())
            {
                json.WriteNumber(AuditNames.Of(kind), resource.ByKind.GetValueOrDefault(kind));
            }

            json.WriteEndObject();
            json.WriteStartObject("prefixes");
            foreach (var (prefix, count) in resource.ByPrefix)
            {
                json.WriteNumber(prefix, count);
            }

            json.WriteEndObject();
            json.WriteStartArray("kmsV2");
            foreach (var (keyId, counts) in resource.KmsV2ByKeyId)
            {
                json.WriteStartObject();
                json.WriteString("provider", keyId.Provider);
                json.WriteString("keyId", keyId.KeyId);
                json.WriteString("keyIdHash", ApiserverKeyIdHash.Of(keyId.KeyId));
                json.WriteString("status", AuditNames.Of(report.KeyIds.First(k => k.Provider == keyId.Provider && k.KeyId == keyId.KeyId).Role));
                WriteCounts(json, counts);
                json.WriteEndObject();
            }

            json.WriteEndArray();
            json.WriteEndObject();
        }

        json.WriteEndArray();

        json.WriteStartArray("keyIds");
        foreach (var keyId in report.KeyIds)
        {
            json.WriteStartObject();
            json.WriteString("keyId", keyId.KeyId);
            json.WriteString("keyIdHash", keyId.KeyIdHash);
            json.WriteString("status", AuditNames.Of(keyId.Role));
            WriteStringOrNull(json, "rootKey", keyId.RootKeyName);
            WriteStringOrNull(json, "provider", keyId.Provider);
            WriteCounts(json, keyId.Counts);
            json.WriteNumber("dekSources", keyId.DekSources);
            if (keyId.Verify is { } verify)
            {
                json.WriteStartObject("verify");
                json.WriteNumber("dekSourcesDecrypted", verify.DekSourcesDecrypted);
                json.WriteNumber("dekSourcesFailed", verify.DekSourcesFailed);
                json.WriteNumber("objectsReadable", verify.ObjectsReadable);
                json.WriteNumber("objectsUnreadable", verify.ObjectsUnreadable);
                json.WriteNumber("objectsNotSampled", verify.ObjectsNotSampled);
                json.WriteEndObject();
            }
            else
            {
                json.WriteNull("verify");
            }

            json.WriteEndObject();
        }

        json.WriteEndArray();

        json.WriteStartArray("problems");
        foreach (var problem in report.Problems)
        {
            json.WriteStartObject();
            json.WriteString("key", problem.Key);
            json.WriteString("problem", problem.Problem);
            json.WriteEndObject();
        }

        json.WriteEndArray();
        json.WriteNumber("problemsNotListed", report.ProblemsNotListed);
        if (report.Options.RequireKeyId is { } required)
        {
            json.WriteStartObject("requireKeyId");
            json.WriteString("keyId", required);
            json.WriteString("keyIdHash", ApiserverKeyIdHash.Of(required));
            json.WriteNumber("notUnderKeyId", report.NotUnderRequiredKeyId);
            json.WriteEndObject();
        }
        else
        {
            json.WriteNull("requireKeyId");
        }

        json.WriteBoolean("verified", report.Verified);
        json.WriteNumber("corrupted", report.Corrupted);
        json.WriteNumber("unreadable", report.Unreadable);
        json.WriteBoolean("passed", report.Passed);
        json.WriteEndObject();
    }

    private static void WriteCounts(Utf8JsonWriter json, KeyIdObjectCounts counts)
    {
        json.WriteNumber("objects", counts.Objects);
        json.WriteStartObject("dekSourceTypes");
        json.WriteNumber(AuditNames.AesGcmKey, counts.AesGcmKey);
        json.WriteNumber(AuditNames.HkdfSeed, counts.HkdfSeed);
        json.WriteEndObject();
    }

    private static void WriteStringOrNull(Utf8JsonWriter json, string name, string? value)
    {
        if (value is null)
        {
            json.WriteNull(name);
        }
        else
        {
            json.WriteString(name, value);
        }
    }
}
