using KmsPlugin.Configuration;
using KmsPlugin.Grpc;

namespace KmsPlugin.Hosting;

/// <summary>
/// Maps the deprecated KMS v1 service on the plugin's socket when <c>kmsV1beta1.enabled</c> is set. When it is not
/// mapped, grpc-dotnet answers <c>/v1beta1.KeyManagementService/*</c> with Unimplemented, as for any unknown service.
/// </summary>
public static class KmsV1Beta1Endpoint
{
    public static void MapIfEnabled(WebApplication app, V1Beta1Config config)
    {
        ArgumentNullException.ThrowIfNull(app);
        ArgumentNullException.ThrowIfNull(config);
        if (!config.Enabled)
        {
            return;
        }

        app.MapGrpcService<KeyManagementV1Beta1GrpcService>();
        var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("KmsPlugin");

        // Facts: the KMSv1 feature gate is Deprecated (default on) in 1.28 and Deprecated, default off, from 1.29
        // (apiserver/pkg/features/kube_features.go); with it off, kube-apiserver refuses an EncryptionConfiguration
        // with a `kms` provider of `apiVersion: v1` (apiserver/pkg/server/options/encryptionconfig/config.go);
        // kubernetes.io "Using a KMS provider for data encryption": "KMS v1 is deprecated (since Kubernetes v1.28)
        // and disabled by default (since Kubernetes v1.29)". It has not been removed.
        app.Lifetime.ApplicationStarted.Register(() => logger.LogWarning(
            "also serving KMS v1 (/v1beta1.KeyManagementService) because kmsV1beta1.enabled is set: KMS v1 is deprecated upstream "
            + "(deprecated in Kubernetes 1.28; disabled by default since 1.29, where kube-apiserver needs --feature-gates=KMSv1=true to use it); "
            + "migrate to KMS v2 (docs/apiserver-compatibility.md, \"KMS v1beta1 (deprecated)\") and then turn kmsV1beta1 off"));
    }
}
