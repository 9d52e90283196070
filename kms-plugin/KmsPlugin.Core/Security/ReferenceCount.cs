namespace KmsPlugin.Core.Security;

/// <summary>
/// Counts the holders of something whose key material or native handles must outlive every user: it starts with
/// one holder (the creator), <see cref="TryAcquire"/> fails once the last holder has let go, and
/// <see cref="Release"/> says when that happened so the owner can zero or free exactly once.
/// </summary>
public sealed class ReferenceCount
{
    private int _count = 1;

    public bool TryAcquire()
    {
        var current = Volatile.Read(ref _count);
        while (current > 0)
        {
            var seen = Interlocked.CompareExchange(ref _count, current + 1, current);
            if (seen == current)
            {
                return true;
            }

            current = seen;
        }

        return false;
    }

    /// <summary>Drops one holder; true when it was the last.</summary>
    public bool Release() => Interlocked.Decrement(ref _count) == 0;
}
