using System.Globalization;

namespace DpoSharp.Diagnostics;

/// <summary>
/// Physical CPU cores, the default number of intra-op threads: a second hyper-thread per core adds no fp32 matmul
/// throughput, and more threads than cores — or threads competing with other processes for them — slow libtorch's
/// OpenMP loops down sharply (BENCHMARKS.md records 5× at 2 threads under load on a 2-core machine).
/// </summary>
public static class CpuTopology
{
    /// <summary>
    /// Distinct (package, core) pairs among the CPUs this process may run on (Linux sysfs), capped by
    /// <see cref="Environment.ProcessorCount"/>; elsewhere, or when sysfs is unreadable, <see cref="Environment.ProcessorCount"/>.
    /// </summary>
    public static int PhysicalCores()
    {
        int logical = Environment.ProcessorCount;
        try
        {
            var cores = new HashSet<(string, string)>();
            foreach (var cpu in Directory.EnumerateDirectories("/sys/devices/system/cpu", "cpu*"))
            {
                var name = Path.GetFileName(cpu);
                if (!int.TryParse(name.AsSpan(3), NumberStyles.None, CultureInfo.InvariantCulture, out _))
                {
                    continue;
                }

                var core = Path.Combine(cpu, "topology", "core_id");
                var package = Path.Combine(cpu, "topology", "physical_package_id");
                if (File.Exists(core) && File.Exists(package))
                {
                    cores.Add((File.ReadAllText(package).Trim(), File.ReadAllText(core).Trim()));
                }
            }

            return cores.Count > 0 ? Math.Min(cores.Count, logical) : logical;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return logical;
        }
    }
}
