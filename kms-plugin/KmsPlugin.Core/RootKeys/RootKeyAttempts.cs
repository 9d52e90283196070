namespace KmsPlugin.Core.RootKeys;

/// <summary>
/// Reports each attempt of a retried remote call (<see cref="RetryPolicy.RunAsync{T}"/>) to whoever observes the
/// root-key call it belongs to: the metering around a root key sets an observer for the duration of one call, and
/// the provider's retry loop reports every try through it without knowing about metrics. An
/// <see cref="AsyncLocal{T}"/> carries the observer into the provider's awaits and no further.
/// </summary>
public static class RootKeyAttempts
{
    private static readonly AsyncLocal<Action<Exception?>?> Observer = new();

    /// <summary>
    /// Sets <paramref name="onAttempt"/> (null failure = a successful attempt) for the rest of the calling async method;
    /// an async method's changes to an <see cref="AsyncLocal{T}"/> do not flow back to its caller.
    /// </summary>
    public static void ObserveInThisCall(Action<Exception?> onAttempt) => Observer.Value = onAttempt;

    internal static void Report(Exception? failure) => Observer.Value?.Invoke(failure);
}
