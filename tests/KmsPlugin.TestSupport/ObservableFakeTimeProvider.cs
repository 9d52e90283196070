using Microsoft.Extensions.Time.Testing;

namespace KmsPlugin.TestSupport;

/// <summary>
/// A <see cref="FakeTimeProvider"/> that also records every timer the code under test creates on it (each
/// <c>Task.Delay(delay, timeProvider, ...)</c> is one), with its due time and the fake time it was created at. A test
/// that drives a background loop (the health probe) with fake time waits for the loop to arm its next wait before
/// advancing the clock again; otherwise an advance that lands between "the probe finished" and "the next wait was
/// armed" would silently move the loop's schedule.
/// </summary>
public sealed class ObservableFakeTimeProvider(DateTimeOffset start) : FakeTimeProvider(start)
{
    private readonly Lock _lock = new();
    private readonly List<(TimeSpan DueTime, DateTimeOffset CreatedAt)> _timers = [];

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        lock (_lock)
        {
            _timers.Add((dueTime, GetUtcNow()));
        }

        return base.CreateTimer(callback, state, dueTime, period);
    }

    /// <summary>How many timers with <paramref name="dueTime"/> have been created so far.</summary>
    public int TimersCreated(TimeSpan dueTime)
    {
        lock (_lock)
        {
            return _timers.Count(t => t.DueTime == dueTime);
        }
    }

    /// <summary>
    /// Waits (in real time, at most <paramref name="realTimeout"/>) until the <paramref name="index"/>-th timer (from 0)
    /// with <paramref name="dueTime"/> has been created, and returns the fake time it was created at.
    /// </summary>
    /// <exception cref="TimeoutException">No such timer appeared in time.</exception>
    public async Task<DateTimeOffset> WaitForTimerAsync(TimeSpan dueTime, int index, TimeSpan realTimeout)
    {
        var giveUp = DateTime.UtcNow + realTimeout;
        while (true)
        {
            lock (_lock)
            {
                var matching = _timers.Where(t => t.DueTime == dueTime).ToList();
                if (matching.Count > index)
                {
                    return matching[index].CreatedAt;
                }
            }

            if (DateTime.UtcNow > giveUp)
            {
                throw new TimeoutException($"no timer #{index} of {dueTime.TotalSeconds}s was created within {realTimeout.TotalSeconds}s of real time");
            }

            await Task.Delay(10);
        }
    }
}
