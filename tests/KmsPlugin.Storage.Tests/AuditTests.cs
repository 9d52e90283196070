using System.Text.Json;
using KmsPlugin.Storage.Format;
using KmsPlugin.TestSupport;

namespace KmsPlugin.Storage.Tests;

/// <summary><c>kms-plugin audit</c> against a real etcd holding a store mid-rotation (<see cref="MixedStoreFixture"/>).</summary>
public sealed class AuditTests(MixedStoreFixture store) : IClassFixture<MixedStoreFixture>
{
    private string[] Args(params string[] extra) =>
        ["--etcd-endpoints", store.Etcd.Endpoint, "--prefix", store.Prefix, "--config", store.ConfigFile, .. extra];

    [Theory]
    [InlineData("500")]
    [InlineData("3")]
    [InlineData("1")]
    public async Task Audit_counts_every_storage_format_and_key_id_exactly_whatever_the_page_size(string pageSize)
    {
        var run = await AuditRunner.RunAsync(Args("--resources", "secrets,configmaps", "--output", "json", "--page-size", pageSize));

        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Equal(24, run.Json.GetProperty("scanned").GetInt64());
        Assert.Equal(["configmaps", "secrets"], run.Json.GetProperty("resources").EnumerateArray().Select(r => r.GetProperty("resource").GetString()!));

        var secrets = run.Resource("secrets");
        Assert.Equal(20, secrets.GetProperty("total").GetInt64());
        Assert.Equal(2, secrets.GetProperty("plaintext").GetInt64());
        Assert.Equal(1, secrets.GetProperty("corrupted").GetInt64());
        var kinds = secrets.GetProperty("kinds");
        Assert.Equal(
            new Dictionary<string, long> { ["plaintext"] = 2, ["aescbc"] = 1, ["aesgcm"] = 1, ["secretbox"] = 1, ["kmsV1"] = 1, ["kmsV2"] = 14, ["unrecognized"] = 0 },
            kinds.EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetInt64()));
        Assert.Equal(
            new Dictionary<string, long>
            {
                ["aescbc:key1"] = 1, ["aesgcm:key1"] = 1, ["kms:v1:old-kms"] = 1, ["kms:v2:kms-plugin"] = 13, ["kms:v2:other-kms"] = 1,
                ["plaintext"] = 2, ["secretbox:key1"] = 1,
            },
            secrets.GetProperty("prefixes").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetInt64()));
        var byKeyId = secrets.GetProperty("kmsV2").EnumerateArray().ToDictionary(
            k => k.GetProperty("keyId").GetString()!,
            k => (Status: k.GetProperty("status").GetString(), Objects: k.GetProperty("objects").GetInt64(),
                Hkdf: k.GetProperty("dekSourceTypes").GetProperty("HKDF_SHA256_XNONCE_AES_GCM_SEED").GetInt64(),
                Aes: k.GetProperty("dekSourceTypes").GetProperty("AES_GCM_KEY").GetInt64()));
        Assert.Equal(("current", 6L, 6L, 0L), byKeyId[store.NewKeyId]);
        Assert.Equal(("old", 5L, 3L, 2L), byKeyId[store.OldKeyId]);
        Assert.Equal(("unknown", 1L, 1L, 0L), byKeyId[store.RemovedKeyId]);
        Assert.Equal(("unknown", 1L, 1L, 0L), byKeyId["1"]);

        var configmaps = run.Resource("configmaps");
        Assert.Equal(4, configmaps.GetProperty("total").GetInt64());
        Assert.Equal(3, configmaps.GetProperty("plaintext").GetInt64());
        Assert.Equal(store.NewKeyId, configmaps.GetProperty("kmsV2").EnumerateArray().Single().GetProperty("keyId").GetString());

        var current = run.KeyId(store.NewKeyId);
        Assert.Equal(("current", "new", 7L, 1L), (current.GetProperty("status").GetString(), current.GetProperty("rootKey").GetString(),
            current.GetProperty("objects").GetInt64(), current.GetProperty("dekSources").GetInt64()));
        var old = run.KeyId(store.OldKeyId);
        Assert.Equal(("old", "old", 5L, 2L), (old.GetProperty("status").GetString(), old.GetProperty("rootKey").GetString(),
            old.GetProperty("objects").GetInt64(), old.GetProperty("dekSources").GetInt64()));
        Assert.Equal(ApiserverKeyIdHash.Of(store.OldKeyId), old.GetProperty("keyIdHash").GetString());
        Assert.Equal("unknown", run.KeyId(store.RemovedKeyId).GetProperty("status").GetString());
        Assert.Equal(JsonValueKind.Null, run.KeyId(store.RemovedKeyId).GetProperty("rootKey").ValueKind);
        Assert.Equal("other-kms", run.KeyId("1").GetProperty("provider").GetString());
        Assert.Equal([store.NewKeyId, store.OldKeyId], run.Json.GetProperty("keyIds").EnumerateArray().Take(2).Select(k => k.GetProperty("keyId").GetString()));
    }

    [Fact]
    public async Task A_corrupted_value_is_listed_with_its_key_and_the_scan_goes_on()
    {
        var run = await AuditRunner.RunAsync(Args("--resources", "secrets"));

        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Contains($"{store.Key("secrets/default/broken-0")}: corrupted KMS v2 value: the EncryptedObject does not parse", run.Output, StringComparison.Ordinal);
        Assert.Contains("audit: 1 corrupted values", run.Output, StringComparison.Ordinal);
        Assert.Matches(@"(?m)^secrets\s+20\s+2\s+1\s+1\s+1\s+1\s+14\s+0\s+1$", run.Output);
        Assert.Contains("audit: scanned 20 keys", run.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_table_shows_each_key_id_with_the_apiservers_hash_and_its_status()
    {
        var run = await AuditRunner.RunAsync(Args("--resources", "secrets,configmaps"));

        var lines = run.Output.Split('\n');
        var current = lines.Single(l => l.StartsWith(store.NewKeyId + " ", StringComparison.Ordinal));
        Assert.Matches($@"^{store.NewKeyId}\s+{ApiserverKeyIdHash.Of(store.NewKeyId)}\s+current\s+new\s+kms-plugin\s+7\s+1$", current);
        var old = lines.Single(l => l.StartsWith(store.OldKeyId + " ", StringComparison.Ordinal));
        Assert.Matches($@"^{store.OldKeyId}\s+{ApiserverKeyIdHash.Of(store.OldKeyId)}\s+old\s+old\s+kms-plugin\s+5\s+2$", old);
        Assert.Contains(lines, l => System.Text.RegularExpressions.Regex.IsMatch(l, @"^secrets\s+kms-plugin\s+" + store.OldKeyId + @"\s+old\s+5\s+3\s+2$"));
    }

    [Fact]
    public async Task Without_resources_every_resource_under_the_prefix_is_counted_and_nothing_outside_it()
    {
        var run = await AuditRunner.RunAsync(Args("--output", "json"));

        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Equal(26, run.Json.GetProperty("scanned").GetInt64());
        Assert.Equal(["apiregistration.k8s.io/apiservices", "configmaps", "pods", "secrets"],
            run.Json.GetProperty("resources").EnumerateArray().Select(r => r.GetProperty("resource").GetString()!));
        Assert.Equal(1, run.Resource("pods").GetProperty("plaintext").GetInt64());
    }

    [Fact]
    public async Task Without_a_config_key_ids_are_counted_but_not_judged()
    {
        var run = await AuditRunner.RunAsync("--etcd-endpoints", store.Etcd.Endpoint, "--prefix", store.Prefix, "--resources", "secrets", "--output", "json");

        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.All(run.Json.GetProperty("keyIds").EnumerateArray(), k => Assert.Equal("not-checked", k.GetProperty("status").GetString()));
        Assert.Equal(6, run.KeyId(store.NewKeyId).GetProperty("objects").GetInt64());
    }

    [Fact]
    public async Task Verify_decrypts_each_DEK_source_through_the_running_plugin_and_reports_what_is_unreadable()
    {
        var run = await AuditRunner.RunAsync(Args("--resources", "secrets,configmaps", "--verify", "--provider", "kms-plugin", "--output", "json"));

        Assert.True(run.ExitCode == 1, run.ToString());
        static (long, long, long, long, long) Verify(System.Text.Json.JsonElement keyId)
        {
            var v = keyId.GetProperty("verify");
            return (v.GetProperty("dekSourcesDecrypted").GetInt64(), v.GetProperty("dekSourcesFailed").GetInt64(), v.GetProperty("objectsReadable").GetInt64(),
                v.GetProperty("objectsUnreadable").GetInt64(), v.GetProperty("objectsNotSampled").GetInt64());
        }

        Assert.Equal((1L, 0L, 6L, 1L, 0L), Verify(run.KeyId(store.NewKeyId)));
        Assert.Equal((2L, 0L, 5L, 0L, 0L), Verify(run.KeyId(store.OldKeyId)));
        Assert.Equal((0L, 1L, 0L, 1L, 0L), Verify(run.KeyId(store.RemovedKeyId)));
        Assert.Equal(JsonValueKind.Null, run.KeyId("1").GetProperty("verify").ValueKind); // another provider: not ours to verify
        Assert.Equal(2, run.Json.GetProperty("unreadable").GetInt64());
        Assert.False(run.Json.GetProperty("passed").GetBoolean());
        var problems = run.Json.GetProperty("problems").EnumerateArray().ToDictionary(p => p.GetProperty("key").GetString()!, p => p.GetProperty("problem").GetString()!);
        Assert.StartsWith("unreadable: does not decrypt", problems[store.Key("secrets/default/moved-0")], StringComparison.Ordinal);
        Assert.StartsWith("unreadable: the plugin could not decrypt its DEK source", problems[store.Key("secrets/default/stray-0")], StringComparison.Ordinal);
        Assert.StartsWith("corrupted", problems[store.Key("secrets/default/broken-0")], StringComparison.Ordinal);
        Assert.DoesNotContain("v1 Secret", run.Output, StringComparison.Ordinal); // plaintext is never printed
    }

    [Fact]
    public async Task Verify_opens_only_the_sample_of_each_DEK_source()
    {
        var run = await AuditRunner.RunAsync(Args("--resources", "secrets", "--verify", "--provider", "kms-plugin", "--sample", "2", "--output", "json"));

        var verify = run.KeyId(store.NewKeyId).GetProperty("verify");
        Assert.Equal(2, verify.GetProperty("objectsReadable").GetInt64() + verify.GetProperty("objectsUnreadable").GetInt64());
        Assert.Equal(4, verify.GetProperty("objectsNotSampled").GetInt64());
        Assert.Equal(1, run.KeyId(store.NewKeyId).GetProperty("verify").GetProperty("dekSourcesDecrypted").GetInt64());
    }

    [Fact]
    public async Task Verify_without_a_provider_filter_also_tries_the_other_providers_values_and_fails_them()
    {
        var run = await AuditRunner.RunAsync(Args("--resources", "secrets", "--verify", "--output", "json"));

        Assert.Equal(1, run.ExitCode);
        Assert.Equal(1, run.KeyId("1").GetProperty("verify").GetProperty("dekSourcesFailed").GetInt64());
        Assert.Equal(3, run.Json.GetProperty("unreadable").GetInt64());
    }

    [Fact]
    public async Task Verify_passes_when_everything_scanned_is_readable()
    {
        var run = await AuditRunner.RunAsync(Args("--resources", "configmaps", "--verify", "--sample", "0"));

        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Contains("verify: OK: 1 sampled objects decrypted through the plugin, none unreadable", run.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Verify_fails_fast_when_the_plugin_does_not_answer()
    {
        var run = await AuditRunner.RunAsync(Args("--resources", "configmaps", "--verify", "--listen", "unix:///tmp/no-such-kms-plugin.sock", "--timeout", "500ms"));

        Assert.Equal(1, run.ExitCode);
        Assert.Contains("does not answer Status", run.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Require_key_id_fails_while_anything_is_not_under_it_and_says_how_much()
    {
        var run = await AuditRunner.RunAsync(Args("--resources", "secrets,configmaps", "--require-key-id", store.NewKeyId));

        Assert.Equal(1, run.ExitCode);
        Assert.Contains($"require-key-id: FAILED: 17 of 24 values are not under {store.NewKeyId} ({ApiserverKeyIdHash.Of(store.NewKeyId)})", run.Output,
            StringComparison.Ordinal);
    }

    [Fact]
    public async Task Json_output_has_the_documented_shape()
    {
        var run = await AuditRunner.RunAsync(Args("--resources", "secrets", "--output", "json", "--verify", "--provider", "kms-plugin", "--require-key-id", store.NewKeyId));

        var json = run.Json;
        Assert.Equal(
            ["source", "prefix", "revision", "snapshotRestarts", "scanned", "elapsedSeconds", "resources", "keyIds", "problems", "problemsNotListed",
                "requireKeyId", "verified", "corrupted", "unreadable", "passed"],
            json.EnumerateObject().Select(p => p.Name));
        Assert.Equal(store.Prefix, json.GetProperty("prefix").GetString());
        Assert.True(json.GetProperty("revision").GetInt64() > 0);
        var resource = json.GetProperty("resources")[0];
        Assert.Equal(["resource", "total", "plaintext", "corrupted", "kinds", "prefixes", "kmsV2"], resource.EnumerateObject().Select(p => p.Name));
        Assert.Equal(["provider", "keyId", "keyIdHash", "status", "objects", "dekSourceTypes"], resource.GetProperty("kmsV2")[0].EnumerateObject().Select(p => p.Name));
        var keyId = run.KeyId(store.NewKeyId);
        Assert.Equal(["keyId", "keyIdHash", "status", "rootKey", "provider", "objects", "dekSourceTypes", "dekSources", "verify"],
            keyId.EnumerateObject().Select(p => p.Name));
        Assert.Equal(["dekSourcesDecrypted", "dekSourcesFailed", "objectsReadable", "objectsUnreadable", "objectsNotSampled"],
            keyId.GetProperty("verify").EnumerateObject().Select(p => p.Name));
        Assert.Equal(["keyId", "keyIdHash", "notUnderKeyId"], json.GetProperty("requireKeyId").EnumerateObject().Select(p => p.Name));
        Assert.Equal(["key", "problem"], json.GetProperty("problems")[0].EnumerateObject().Select(p => p.Name));
        Assert.True(json.GetProperty("verified").GetBoolean());
        Assert.False(json.GetProperty("passed").GetBoolean());
        Assert.Equal(1, run.ExitCode);
    }
}
