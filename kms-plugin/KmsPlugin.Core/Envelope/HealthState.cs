namespace KmsPlugin.Core.Envelope;

/// <summary>The last verdict of the background root-key probe, served by Status without any remote call.</summary>
public sealed record HealthState(bool Healthy, string Reason, DateTimeOffset CheckedAt)
{
    /// <summary>StatusResponse.healthz: exactly "ok" when healthy (the apiserver compares the string), else the reason.</summary>
    public string Healthz => Healthy ? "ok" : Reason;

    public static HealthState Starting(DateTimeOffset now) => new(false, "starting: the first root key probe has not finished", now);
}
