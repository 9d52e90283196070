namespace KmsPlugin.Core.Envelope;

/// <summary>
/// What metrics may know about the KEK in use: when it was made, how many seeds it has sealed, and whether an
/// additional-wrap root key failed to wrap it (never its bytes).
/// </summary>
public readonly record struct CurrentKekInfo(DateTimeOffset CreatedAt, long Seals, bool MissingWraps = false);
