namespace KmsPlugin.Core.Envelope;

/// <summary>How Encrypt protects the apiserver's seed (configuration: <c>envelope.mode</c>). Decrypt accepts both formats in either mode.</summary>
public enum EnvelopeMode
{
    /// <summary>The local KEK hierarchy (DESIGN.md section 2): seeds sealed locally, one root-key call per KEK. The default.</summary>
    Kek,

    /// <summary>
    /// Every seed wrapped and unwrapped by the primary root key itself, one remote call per Encrypt and per Decrypt,
    /// as the existing Go plugins do. It exists to measure what the KEK hierarchy saves (bench/README.md, restart storm).
    /// </summary>
    Direct,
}
