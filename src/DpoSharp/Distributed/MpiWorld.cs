using DpoSharp.Training.Engine;
using static TorchSharp.torch;

namespace DpoSharp.Distributed;

/// <summary>
/// The processes of an <c>mpirun</c> job (<c>MPI_COMM_WORLD</c>) as an <see cref="IProcessGroup"/>: sums go through
/// <c>MPI_Allreduce</c> (host numbers in double, tensors in float32 25 MiB buckets), broadcasts through
/// <c>MPI_Bcast</c> (bytes, exact). Created by <see cref="Initialize"/> from the launcher's environment; disposing it
/// calls <c>MPI_Finalize</c>. Collectives are called from one thread at a time (MPI_THREAD_SERIALIZED). Tensors on
/// a CUDA device are copied to the CPU for each bucket (no CUDA-aware MPI is assumed).
/// </summary>
public sealed unsafe class MpiWorld : IProcessGroup, IDisposable
{
    private readonly MpiNative _mpi;
    private readonly FlatBuckets _buckets;
    private bool _finalized;

    private MpiWorld(MpiNative mpi, LaunchEnvironment launch, long bucketBytes)
    {
        _mpi = mpi;
        _buckets = new FlatBuckets(bucketBytes);
        Launch = launch;
        int rank, size;
        MpiNative.Check(mpi.CommRank(mpi.CommWorld, &rank), "MPI_Comm_rank");
        MpiNative.Check(mpi.CommSize(mpi.CommWorld, &size), "MPI_Comm_size");
        Rank = rank;
        WorldSize = size;
    }

    /// <inheritdoc/>
    public int Rank { get; }

    /// <inheritdoc/>
    public int WorldSize { get; }

    /// <summary>What the launcher announced (local rank and size for the thread default).</summary>
    public LaunchEnvironment Launch { get; }

    /// <summary>The MPI library loaded.</summary>
    public string LibraryPath => _mpi.Path;

    /// <summary>Bytes per all-reduce / broadcast bucket.</summary>
    public long BucketBytes => _buckets.BucketBytes;

    /// <summary>
    /// Initialises MPI when <paramref name="launch"/> says this process is one of several; null otherwise (one
    /// process: MPI is never loaded). Throws <see cref="DpoSharpException"/> when Open MPI cannot be loaded, or when
    /// MPI's world size disagrees with the launcher's.
    /// </summary>
    /// <param name="launch">The launcher's environment (<see cref="LaunchEnvironment.Current"/>).</param>
    /// <param name="bucketBytes">Bytes per all-reduce bucket (default 25 MiB).</param>
    public static MpiWorld? Initialize(LaunchEnvironment launch, long bucketBytes = FlatBuckets.DefaultBucketBytes)
    {
        ArgumentNullException.ThrowIfNull(launch);
        if (!launch.IsMultiProcess)
        {
            return null;
        }

        var mpi = MpiNative.Load();
        int initialized;
        MpiNative.Check(mpi.Initialized(&initialized), "MPI_Initialized");
        if (initialized == 0)
        {
            int provided;
            MpiNative.Check(mpi.InitThread(IntPtr.Zero, IntPtr.Zero, MpiNative.ThreadSerialized, &provided), "MPI_Init_thread");
        }

        var world = new MpiWorld(mpi, launch, bucketBytes);
        if (launch.Size is int announced && announced != world.WorldSize)
        {
            throw new DpoSharpException($"the launcher announced {announced} processes but MPI reports {world.WorldSize}; launch with Open MPI's mpirun.");
        }

        return world.WorldSize > 1 ? world : world.FinalizeAndReturnNull();
    }

    /// <inheritdoc/>
    public void SumInPlace(Span<double> values)
    {
        if (values.IsEmpty)
        {
            return;
        }

        fixed (double* p = values)
        {
            MpiNative.Check(_mpi.Allreduce(MpiNative.InPlace, (IntPtr)p, values.Length, _mpi.Double, _mpi.Sum, _mpi.CommWorld), "MPI_Allreduce");
        }
    }

    /// <inheritdoc/>
    public void SumInPlace(IReadOnlyList<Tensor> tensors)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        using var scope = NewDisposeScope();
        _buckets.Transfer(tensors, ScalarType.Float32, (ptr, count) =>
            MpiNative.Check(_mpi.Allreduce(MpiNative.InPlace, ptr, count, _mpi.Float, _mpi.Sum, _mpi.CommWorld), "MPI_Allreduce"));
    }

    /// <inheritdoc/>
    public void Broadcast(IReadOnlyList<Tensor> tensors)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        using var scope = NewDisposeScope();

        // One pass per dtype, in first-seen order (the same on every rank); bytes travel unchanged.
        foreach (var group in tensors.GroupBy(t => t.dtype))
        {
            var list = group.ToList();
            long elementSize = list[0].element_size();
            _buckets.Transfer(list, group.Key, (ptr, count) =>
                MpiNative.Check(_mpi.Bcast(ptr, checked((int)(count * elementSize)), _mpi.Byte, 0, _mpi.CommWorld), "MPI_Bcast"));
        }
    }

    /// <summary>Waits until every rank reaches this call.</summary>
    public void Barrier() => MpiNative.Check(_mpi.Barrier(_mpi.CommWorld), "MPI_Barrier");

    /// <summary>Ends every process of the job with <paramref name="exitCode"/> (<c>MPI_Abort</c>): what a rank does
    /// on a fatal error, so the others do not wait for it forever. Open MPI's <c>mpirun</c> ends every process and
    /// exits with <paramref name="exitCode"/>; this call does not return.</summary>
    public void Abort(int exitCode) => _mpi.Abort(_mpi.CommWorld, exitCode);

    /// <summary>Calls <c>MPI_Finalize</c> (once).</summary>
    public void Dispose()
    {
        if (_finalized)
        {
            return;
        }

        _finalized = true;
        _buckets.Dispose();
        int finalized;
        if (_mpi.Finalized(&finalized) == 0 && finalized == 0)
        {
            _mpi.Finalize();
        }
    }

    private MpiWorld? FinalizeAndReturnNull()
    {
        Dispose();
        return null;
    }
}
