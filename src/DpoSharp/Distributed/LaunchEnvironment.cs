using System.Globalization;

namespace DpoSharp.Distributed;

/// <summary>
/// What the MPI launcher told this process through its environment, read before MPI is initialised: Open MPI's
/// <c>OMPI_COMM_WORLD_SIZE</c> / <c>_RANK</c> / <c>_LOCAL_RANK</c> / <c>_LOCAL_SIZE</c>, else PMI's <c>PMI_SIZE</c> /
/// <c>PMI_RANK</c> (and PMIx's <c>PMIX_RANK</c>, with the size from MPI itself). A process not started by a launcher,
/// or started as a world of one, trains alone and never loads MPI.
/// </summary>
/// <param name="Launched">True when a launcher's variables are present.</param>
/// <param name="Size">The world size the launcher announced; null when only a rank was given (PMIx).</param>
/// <param name="Rank">This process's rank; 0 when not launched.</param>
/// <param name="LocalRank">Rank among the processes on this machine.</param>
/// <param name="LocalSize">Processes on this machine (1 when unknown).</param>
public sealed record LaunchEnvironment(bool Launched, int? Size, int Rank, int LocalRank, int LocalSize)
{
    /// <summary>Not started by a launcher: one process.</summary>
    public static LaunchEnvironment Single { get; } = new(false, 1, 0, 0, 1);

    /// <summary>True when this process is one of several (MPI must be initialised).</summary>
    public bool IsMultiProcess => Launched && Size is not 1;

    /// <summary>Reads the current process's environment.</summary>
    public static LaunchEnvironment Current() => From(Environment.GetEnvironmentVariable);

    /// <summary>Reads the variables through <paramref name="get"/> (null: unset).</summary>
    public static LaunchEnvironment From(Func<string, string?> get)
    {
        ArgumentNullException.ThrowIfNull(get);
        int? Int(params string[] names)
        {
            foreach (var n in names)
            {
                if (get(n) is { Length: > 0 } s)
                {
                    return int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) && v >= 0
                        ? v
                        : throw new DpoSharpException($"the MPI launcher's environment variable {n}={s} is not a non-negative whole number.");
                }
            }

            return null;
        }

        var size = Int("OMPI_COMM_WORLD_SIZE", "PMI_SIZE");
        var rank = Int("OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK");
        if (size is null && rank is null)
        {
            return Single;
        }

        var localSize = Int("OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS") ?? 1;
        var localRank = Int("OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID") ?? 0;
        if (size is 0 || (size is int s && rank is int r && r >= s))
        {
            throw new DpoSharpException($"the MPI launcher's environment is inconsistent: rank {rank} of world size {size}.");
        }

        return new LaunchEnvironment(true, size, rank ?? 0, localRank, Math.Max(1, localSize));
    }

    /// <summary>
    /// The default intra-op thread count of one process: the machine's physical cores
    /// (<see cref="Diagnostics.CpuTopology.PhysicalCores"/>) shared by the processes running on it, at least 1.
    /// </summary>
    public int DefaultThreads() => Math.Max(1, Diagnostics.CpuTopology.PhysicalCores() / LocalSize);
}
