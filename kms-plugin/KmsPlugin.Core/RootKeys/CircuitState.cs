namespace KmsPlugin.Core.RootKeys;

/// <summary>The classic circuit-breaker states (Nygard, "Release It!", ch. 5 "Circuit Breaker").</summary>
public enum CircuitState
{
    /// <summary>Calls reach the remote; consecutive outage-class failures are counted.</summary>
    Closed,

    /// <summary>Calls fail immediately without reaching the remote until the open interval has passed.</summary>
    Open,

    /// <summary>The open interval has passed: exactly one trial call reaches the remote while every other call still fails fast.</summary>
    HalfOpen,
}
