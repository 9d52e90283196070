namespace KmsPlugin.Storage.Audit;

/// <summary>One etcd key and its value, as read (the memory belongs to the page it came from).</summary>
public readonly record struct StoredKeyValue(ReadOnlyMemory<byte> Key, ReadOnlyMemory<byte> Value);
