using System.Globalization;

namespace KmsPlugin.LoadGenerator.Processes;

/// <summary>
/// CPU time and memory of another process from procfs (proc(5)): <c>/proc/PID/stat</c> fields 14 and 15 (utime, stime)
/// and <c>/proc/PID/status</c> VmRSS (resident now) and VmHWM (peak resident).
/// </summary>
internal static class ProcStat
{
    /// <summary>USER_HZ: the unit of utime/stime in /proc/PID/stat. sysconf(_SC_CLK_TCK) is 100 on every Linux
    /// architecture .NET runs on (x86-64, arm64), since the kernel exports a fixed USER_HZ to user space.</summary>
    public const int ClockTicksPerSecond = 100;

    public static TimeSpan CpuTime(int pid)
    {
        var stat = File.ReadAllText($"/proc/{pid}/stat");

        // Field 2 (comm) is in parentheses and may contain spaces: count fields after the last ')'.
        var rest = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        var utime = long.Parse(rest[11], CultureInfo.InvariantCulture); // field 14
        var stime = long.Parse(rest[12], CultureInfo.InvariantCulture); // field 15
        return TimeSpan.FromSeconds((utime + stime) / (double)ClockTicksPerSecond);
    }

    /// <summary>Resident set size now, in bytes.</summary>
    public static long RssBytes(int pid) => StatusKilobytes(pid, "VmRSS:") * 1024;

    /// <summary>Peak resident set size over the process's life, in bytes.</summary>
    public static long PeakRssBytes(int pid) => StatusKilobytes(pid, "VmHWM:") * 1024;

    private static long StatusKilobytes(int pid, string field)
    {
        foreach (var line in File.ReadLines($"/proc/{pid}/status"))
        {
            if (line.StartsWith(field, StringComparison.Ordinal))
            {
                return long.Parse(line[field.Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture);
            }
        }

        throw new InvalidOperationException($"/proc/{pid}/status has no {field}");
    }
}
