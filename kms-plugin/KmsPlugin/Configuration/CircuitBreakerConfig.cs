using KmsPlugin.Core.RootKeys;

namespace KmsPlugin.Configuration;

/// <summary>
/// The top-level <c>circuitBreaker</c> block: one breaker per remote root key (docs/configuration.md, "Circuit
/// breaker"). Absent means on with the defaults; <c>enabled: false</c> turns it off (the other fields are still
/// validated, so a typo is not hidden by the switch).
/// </summary>
public static class CircuitBreakerConfig
{
    /// <summary>The breaker's options, or null when <c>enabled: false</c>.</summary>
    public static CircuitBreakerOptions? Parse(ConfigNode? node)
    {
        if (node is null)
        {
            return CircuitBreakerOptions.Default;
        }

        node.AllowOnly("enabled", "failureThreshold", "openInterval", "maxOpenInterval");
        var defaults = CircuitBreakerOptions.Default;
        var openInterval = node.Duration("openInterval", defaults.OpenInterval, TimeSpan.FromMilliseconds(100), TimeSpan.FromMinutes(10));
        var maxOpenInterval = node.Duration("maxOpenInterval", defaults.MaxOpenInterval < openInterval ? openInterval : defaults.MaxOpenInterval,
            TimeSpan.FromMilliseconds(100), TimeSpan.FromHours(1));
        if (maxOpenInterval < openInterval)
        {
            throw new ConfigException(node.Field("maxOpenInterval"),
                $"must be at least openInterval ({GoDuration.Format(openInterval)}), got {GoDuration.Format(maxOpenInterval)}");
        }

        var options = new CircuitBreakerOptions
        {
            FailureThreshold = (int)node.WholeNumber("failureThreshold", defaults.FailureThreshold, 1, 1000),
            OpenInterval = openInterval,
            MaxOpenInterval = maxOpenInterval,
        };
        return node.Bool("enabled", true) ? options : null;
    }
}
