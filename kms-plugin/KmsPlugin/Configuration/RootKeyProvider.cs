using KmsPlugin.Core.RootKeys;
using KmsPlugin.Core.Security;

namespace KmsPlugin.Configuration;

/// <summary>
/// One root-key provider as the configuration knows it: its <c>provider:</c> name, how to read its settings block,
/// and how to open the key. Providers are listed explicitly in <see cref="RootKeyProviders"/>, never discovered.
/// </summary>
/// <param name="Name">The <c>provider:</c> value and the name of the settings block.</param>
/// <param name="ParseSettings">Reads and validates the block (errors name the field); relative paths resolve against the second argument.</param>
/// <param name="Open">Opens the root key (failing with a KmsPluginException that says why).</param>
public sealed record RootKeyProvider(string Name, Func<ConfigNode, string, object> ParseSettings, Func<RootKeyConfig, IRandomSource, IRootKey> Open);
