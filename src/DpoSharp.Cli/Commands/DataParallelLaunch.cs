using DpoSharp.Distributed;
using DpoSharp.Training;
using Spectre.Console;
using TorchSharp;

namespace DpoSharp.Cli.Commands;

/// <summary>
/// The command-line side of <c>mpirun -np N dposharp train|sft …</c>: detects the launcher
/// (<see cref="LaunchEnvironment"/>), initialises MPI (<see cref="MpiWorld"/>) only when this process is one of
/// several, sets the intra-op threads (<c>--threads</c>, else physical cores ÷ processes on this machine), gives
/// ranks other than 0 a silent console, attaches the world to a trainer, and turns an error on any rank into
/// <c>MPI_Abort</c> so no rank waits for a dead one. Alone (no launcher, or a world of one) it changes nothing.
/// </summary>
internal sealed class DataParallelLaunch : IDisposable
{
    private DataParallelLaunch(MpiWorld? world) => World = world;

    /// <summary>The MPI world, or null for one process.</summary>
    public MpiWorld? World { get; }

    /// <summary>This process's rank (0 alone).</summary>
    public int Rank => World?.Rank ?? 0;

    /// <summary>True on the rank that prints and writes files.</summary>
    public bool IsRank0 => Rank == 0;

    /// <summary>Detects the launcher, initialises MPI when needed and sets the intra-op threads: <paramref name="threads"/>
    /// when positive, else (not given or 0) the physical cores ÷ processes on this machine
    /// (<see cref="LaunchEnvironment.DefaultThreads"/>; alone: all physical cores).</summary>
    public static DataParallelLaunch Start(int? threads)
    {
        if (threads is < 0)
        {
            // On every rank, before MPI starts.
            throw new DpoSharpException($"--threads must be 0 (the physical cores) or positive (got {threads}).");
        }

        var launch = LaunchEnvironment.Current();
        var world = MpiWorld.Initialize(launch);
        torch.set_num_threads(threads is > 0 and int n ? n : launch.DefaultThreads());
        return new DataParallelLaunch(world);
    }

    /// <summary><paramref name="console"/> on rank 0; a console that prints nothing on the others.</summary>
    public IAnsiConsole Console(IAnsiConsole console) => IsRank0 ? console : DpoSharpCli.CreateConsole(TextWriter.Null);

    /// <summary>Makes <paramref name="trainer"/> one of the world's ranks (nothing alone).</summary>
    public void Attach<TBatch>(TrainerBase<TBatch> trainer)
        where TBatch : DpoSharp.Data.SequenceBatch
    {
        ArgumentNullException.ThrowIfNull(trainer);
        if (World is not null)
        {
            trainer.ProcessGroup = World;
        }
    }

    /// <summary>
    /// Runs <paramref name="body"/>; alone, exceptions pass through (the CLI maps them to exit codes). In a world of
    /// several, an exception is reported on <paramref name="error"/> (ranks other than 0 name themselves) and the whole
    /// job is ended with <c>MPI_Abort</c> and the exception's exit code (2 for bad input, 1 for a bug).
    /// </summary>
    public int Run(Func<int> body, TextWriter error)
    {
        ArgumentNullException.ThrowIfNull(body);
        if (World is null)
        {
            return body();
        }

        try
        {
            return body();
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            var writer = IsRank0 ? error : new RankPrefixWriter(error, Rank);
            int code = DpoSharpCli.Fail(e, writer);
            writer.Flush();
            World.Abort(code);
            return code;
        }
    }

    /// <summary>Finalises MPI.</summary>
    public void Dispose() => World?.Dispose();

    /// <summary>Prefixes every line with <c>[rank N]</c>.</summary>
    private sealed class RankPrefixWriter(TextWriter inner, int rank) : TextWriter
    {
        public override System.Text.Encoding Encoding => inner.Encoding;

        public override void Write(char value) => inner.Write(value);

        public override void WriteLine(string? value) => inner.WriteLine($"[rank {rank}] {value}");

        public override void Flush() => inner.Flush();
    }
}
