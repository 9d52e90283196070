using KmsPlugin.Core.RootKeys;
using KmsPlugin.TestSupport;

namespace KmsPlugin.Aws.Tests;

/// <summary>
/// <c>kms-plugin doctor --config FILE</c> with an aws root key (the shared contract), against the KMS and STS fake. KMS
/// rotation keeps the key's ARN and so its key_id: doctor reports no version.
/// </summary>
public sealed class AwsDoctorTests() : DoctorContract("aws", "aws-prod")
{
    private AwsPluginBed? _bed;

    private AwsPluginBed Bed => _bed ?? throw new InvalidOperationException("the bed starts in InitializeAsync");

    protected override TempDirectory Directory => Bed.Directory;

    protected override string RootKeyEntry => Bed.RootKeyYaml(AwsPluginBed.Alias);

    protected override string? FollowedVersion => null;

    // The alias resolves to the key's ARN, which the key_id is derived from.
    protected override string ExpectedKeyId => KeyIds.Derive("aws", AwsKmsRootKey.Identity(Bed.Key.Arn, new Dictionary<string, string>()));

    protected override IReadOnlyList<string> DeniedWrapMessage => ["Encrypt failed: AccessDeniedException", "is not authorized to perform: kms:Encrypt"];

    protected override IReadOnlyList<string> DeniedUnwrapMessage => ["Decrypt failed: AccessDeniedException", "is not authorized to perform: kms:Decrypt"];

    public override async Task InitializeAsync() => _bed = await AwsPluginBed.StartAsync();

    public override async Task DisposeAsync()
    {
        if (_bed is not null)
        {
            await _bed.DisposeAsync();
        }
    }

    protected override int KeyReads() => Bed.Kms.Calls("DescribeKey");

    protected override int Wraps() => Bed.Kms.Calls("Encrypt");

    protected override int Unwraps() => Bed.Kms.Calls("Decrypt");

    protected override void DenyWraps() => Bed.Kms.Fault = new FakeFault(FaultKind.AccessDenied, "Encrypt");

    protected override void DenyUnwraps() => Bed.Kms.Fault = new FakeFault(FaultKind.AccessDenied, "Decrypt");
}
