using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using KmsPlugin.Core.Errors;

namespace KmsPlugin.Core.RootKeys;

/// <summary>
/// Which key_id each wrap set (primary + additional wraps) was given, so that going A → B → A reports a new key_id
/// for the second A (<see cref="KeyIdEpoch"/>). Kept in <c>key-ids.json</c> in the state directory, written
/// atomically (temp file, fsync, rename) before the new key_id is used. Without a state directory the history lives
/// in memory and restarts forget it: the first wrap set after a restart gets epoch 0 of its primary again
/// (docs/rotation.md, "When the state is lost").
/// </summary>
public sealed class KeyIdHistory
{
    public const string FileName = "key-ids.json";
    private const int MaxEntries = 10_000;
    private readonly string? _file;
    private readonly List<Entry> _entries;
    private readonly Lock _lock = new();

    private KeyIdHistory(string? file, List<Entry> entries)
    {
        _file = file;
        _entries = entries;
    }

    /// <summary>Where the history is kept, or null when in memory only.</summary>
    public string? FilePath => _file;

    public static KeyIdHistory InMemory() => new(null, []);

    /// <summary>Loads (or starts) the history in <paramref name="directory"/>; a corrupt file is an error, never silently reset.</summary>
    public static KeyIdHistory Open(string directory)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        var file = Path.Combine(directory, FileName);
        if (!File.Exists(file))
        {
            return new KeyIdHistory(file, []);
        }

        try
        {
            var document = JsonSerializer.Deserialize(File.ReadAllBytes(file), KeyIdHistoryJson.Default.Document);
            if (document is not { Version: 1, Entries: { } entries } || entries.Count > MaxEntries
                || entries.Any(e => string.IsNullOrEmpty(e.Primary) || string.IsNullOrEmpty(e.Signature) || e.Epoch is < 0 or > KeyIdEpoch.MaxEpoch))
            {
                throw new KmsPluginException(KmsErrorKind.Internal, $"{file} is not a key_id history this plugin wrote (version 1); restore it from backup or move it away to start a new history");
            }

            return new KeyIdHistory(file, entries);
        }
        catch (Exception e) when (e is JsonException or IOException or UnauthorizedAccessException)
        {
            throw new KmsPluginException(KmsErrorKind.Internal, $"cannot read the key_id history {file}: {e.Message}; restore it from backup or move it away to start a new history", e);
        }
    }

    /// <summary>
    /// The key_id for a wrap set: the one it already has when it is the latest recorded set; otherwise a new epoch of
    /// its primary (0 the first time that primary is seen), recorded (and persisted) before it is returned.
    /// </summary>
    public string Assign(string primaryKeyId, IReadOnlyList<string> additionalKeyIds)
    {
        lock (_lock)
        {
            var (keyId, entry) = Next(primaryKeyId, additionalKeyIds);
            if (entry is null)
            {
                return keyId;
            }

            _entries.Add(entry);
            if (_entries.Count > MaxEntries)
            {
                // Drop the oldest entries except each primary's newest (what its next epoch is computed from).
                var newestPerPrimary = _entries.GroupBy(e => e.Primary).Select(g => g.MaxBy(e => e.Epoch)!).ToHashSet();
                var excess = _entries.Count - MaxEntries;
                _entries.RemoveAll(e => excess > 0 && !newestPerPrimary.Contains(e) && excess-- > 0);
            }

            try
            {
                Persist();
            }
            catch
            {
                _entries.Remove(entry);
                throw;
            }

            return keyId;
        }
    }

    /// <summary>The key_id <see cref="Assign"/> would give, without recording anything (for <c>doctor</c>).</summary>
    public string Peek(string primaryKeyId, IReadOnlyList<string> additionalKeyIds)
    {
        lock (_lock)
        {
            return Next(primaryKeyId, additionalKeyIds).KeyId;
        }
    }

    private (string KeyId, Entry? New) Next(string primaryKeyId, IReadOnlyList<string> additionalKeyIds)
    {
        ArgumentException.ThrowIfNullOrEmpty(primaryKeyId);
        ArgumentNullException.ThrowIfNull(additionalKeyIds);
        var signature = Signature(primaryKeyId, additionalKeyIds);
        if (_entries.Count > 0 && _entries[^1].Signature == signature)
        {
            return (KeyIdEpoch.Format(primaryKeyId, _entries[^1].Epoch), null);
        }

        var previous = _entries.Where(e => e.Primary == primaryKeyId).Select(e => (int?)e.Epoch).Max();
        var epoch = previous is { } used ? used + 1 : 0;
        if (epoch > KeyIdEpoch.MaxEpoch)
        {
            throw new KmsPluginException(KmsErrorKind.Internal, "the key_id epoch space of this root key is exhausted");
        }

        return (KeyIdEpoch.Format(primaryKeyId, epoch), new Entry { Primary = primaryKeyId, Signature = signature, Epoch = epoch });
    }

    private void Persist()
    {
        if (_file is null)
        {
            return;
        }

        var temp = _file + ".tmp";
        try
        {
            var bytes = JsonSerializer.SerializeToUtf8Bytes(new Document { Version = 1, Entries = _entries }, KeyIdHistoryJson.Default.Document);
            using (var stream = new FileStream(temp, new FileStreamOptions
            {
                Mode = FileMode.Create,
                Access = FileAccess.Write,
                UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
            }))
            {
                stream.Write(bytes);
                stream.Flush(flushToDisk: true);
            }

            File.Move(temp, _file, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new KmsPluginException(KmsErrorKind.Internal, $"cannot record the new key_id in {_file}: {e.Message}", e);
        }
    }

    /// <summary>An opaque, order-sensitive digest of the wrap set (the order is the Decrypt order).</summary>
    private static string Signature(string primary, IReadOnlyList<string> additional)
    {
        var text = new StringBuilder(primary);
        foreach (var keyId in additional)
        {
            text.Append('\n').Append(keyId);
        }

        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text.ToString())));
    }

    internal sealed class Entry
    {
        public string Primary { get; set; } = "";

        public string Signature { get; set; } = "";

        public int Epoch { get; set; }
    }

    internal sealed class Document
    {
        public int Version { get; set; }

        public List<Entry>? Entries { get; set; }
    }
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, WriteIndented = true)]
[JsonSerializable(typeof(KeyIdHistory.Document))]
internal sealed partial class KeyIdHistoryJson : JsonSerializerContext;
