using System.Globalization;

namespace DpoSharp.Diagnostics;

/// <summary>The kernel's memory figures for this process (Linux <c>/proc</c>; null elsewhere).</summary>
public static class ProcMemory
{
    /// <summary>Memory the kernel can give this process now (<c>MemAvailable</c> of /proc/meminfo), or null where unknown.</summary>
    public static long? AvailableBytes() => ReadKb("/proc/meminfo", "MemAvailable");

    /// <summary>The process's peak resident memory so far (<c>VmHWM</c> of /proc/self/status), or null where unknown.</summary>
    public static long? PeakRssBytes() => ReadKb("/proc/self/status", "VmHWM");

    /// <summary>The process's resident memory now (<c>VmRSS</c> of /proc/self/status), or null where unknown.</summary>
    public static long? RssBytes() => ReadKb("/proc/self/status", "VmRSS");

    /// <summary>A <c>Name:  123 kB</c> line of <paramref name="path"/> in bytes, or null.</summary>
    internal static long? ReadKb(string path, string field)
    {
        if (!File.Exists(path))
        {
            return null;
        }

        var line = File.ReadLines(path).FirstOrDefault(l => l.StartsWith(field + ":", StringComparison.Ordinal));
        var parts = line?.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries);   // "VmHWM:\t16554308 kB": no space before 8 digits
        return parts is { Length: >= 2 } && long.TryParse(parts[1], NumberStyles.Integer, CultureInfo.InvariantCulture, out var kb) ? kb * 1024 : null;
    }
}
