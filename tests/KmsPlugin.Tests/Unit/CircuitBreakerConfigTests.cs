using KmsPlugin.Configuration;
using KmsPlugin.Core.RootKeys;

namespace KmsPlugin.Tests.Unit;

/// <summary>The <c>circuitBreaker</c> block of the configuration file.</summary>
public sealed class CircuitBreakerConfigTests
{
    private const string Base = "listen: unix:///run/k.sock\nrootKeys: [{ name: dev, provider: local, local: { keyFile: /k } }]\n";

    private static PluginConfig Parse(string circuitBreaker) => ConfigLoader.Parse(Base + circuitBreaker, "/");

    [Fact]
    public void Without_the_block_every_remote_key_gets_a_breaker_with_the_defaults()
    {
        var options = ConfigLoader.Parse(Base, "/").CircuitBreaker;
        Assert.NotNull(options);
        Assert.Equal(5, options.FailureThreshold);
        Assert.Equal(TimeSpan.FromSeconds(5), options.OpenInterval);
        Assert.Equal(TimeSpan.FromSeconds(60), options.MaxOpenInterval);
    }

    [Fact]
    public void Every_field_is_read()
    {
        var options = Parse("circuitBreaker: { failureThreshold: 3, openInterval: 2s, maxOpenInterval: 2m }").CircuitBreaker;
        Assert.Equal(new CircuitBreakerOptions { FailureThreshold = 3, OpenInterval = TimeSpan.FromSeconds(2), MaxOpenInterval = TimeSpan.FromMinutes(2) }, options);
    }

    [Fact]
    public void Enabled_false_turns_the_breaker_off()
    {
        Assert.Null(Parse("circuitBreaker: { enabled: false }").CircuitBreaker);
        Assert.NotNull(Parse("circuitBreaker: { enabled: true }").CircuitBreaker);
    }

    [Fact]
    public void A_long_open_interval_without_a_maximum_raises_the_maximum_to_match()
    {
        var options = Parse("circuitBreaker: { openInterval: 5m }").CircuitBreaker;
        Assert.Equal(TimeSpan.FromMinutes(5), options!.MaxOpenInterval);
    }

    [Theory]
    [InlineData("circuitBreaker: { failureThreshold: 0 }", "circuitBreaker.failureThreshold")]
    [InlineData("circuitBreaker: { openInterval: 10ms }", "circuitBreaker.openInterval")]
    [InlineData("circuitBreaker: { openInterval: 30s, maxOpenInterval: 10s }", "circuitBreaker.maxOpenInterval")]
    [InlineData("circuitBreaker: { enabled: no }", "circuitBreaker.enabled")]
    [InlineData("circuitBreaker: { threshold: 5 }", "circuitBreaker.threshold")]
    [InlineData("circuitBreaker: { enabled: false, openInterval: soon }", "circuitBreaker.openInterval")]
    [InlineData("circuitBreaker: 5", "circuitBreaker")]
    public void Bad_values_fail_naming_the_field(string yaml, string field)
    {
        var error = Assert.Throws<ConfigException>(() => Parse(yaml));
        Assert.Equal(field, error.Field);
    }
}
