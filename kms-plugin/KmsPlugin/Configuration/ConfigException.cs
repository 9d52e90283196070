namespace KmsPlugin.Configuration;

/// <summary>A configuration problem, always naming the field (e.g. <c>rootKeys[0].pkcs11.pinFile</c>).</summary>
public sealed class ConfigException : Exception
{
    public ConfigException(string field, string problem)
        : base($"{field}: {problem}")
    {
        Field = field;
    }

    public string Field { get; }
}
