namespace KmsPlugin.Core.Envelope;

/// <summary>What metrics may know about the KEK in use: when it was made and how many seeds it has sealed (never its bytes).</summary>
public readonly record struct CurrentKekInfo(DateTimeOffset CreatedAt, long Seals);
