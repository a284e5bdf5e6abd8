using System.Runtime.InteropServices;

namespace DpoSharp.Distributed;

/// <summary>
/// The few MPI C functions DpoSharp calls, bound at run time to Open MPI's <c>libmpi.so.40</c> (no build-time
/// dependency: without MPI installed nothing here is touched). Open MPI's handles (<c>MPI_COMM_WORLD</c>,
/// <c>MPI_FLOAT</c>, <c>MPI_SUM</c>, …) are the addresses of its global objects (<c>ompi_mpi_comm_world</c>, …),
/// read with <see cref="NativeLibrary.GetExport"/>. The library is first opened with <c>RTLD_NOW | RTLD_GLOBAL</c>:
/// Open MPI's plugins (<c>mca_*.so</c>) resolve libmpi's symbols globally and fail to load otherwise
/// (<see cref="NativeLibrary.Load(string)"/> opens with <c>RTLD_LOCAL</c>). MPICH's handles are integers, not
/// addresses: it is not supported.
/// </summary>
internal sealed unsafe class MpiNative
{
    /// <summary>Open MPI's <c>MPI_IN_PLACE</c>: <c>(void*)1</c>.</summary>
    public static readonly IntPtr InPlace = 1;

    /// <summary><c>MPI_THREAD_SERIALIZED</c> in Open MPI (any thread may call, one at a time).</summary>
    public const int ThreadSerialized = 2;

    /// <summary>The library names tried, in order.</summary>
    public static readonly string[] LibraryNames = ["libmpi.so.40", "libmpi.so"];

    private const int RtldNow = 2;
    private const int RtldGlobal = 0x100;

    private MpiNative(IntPtr library, string path)
    {
        Path = path;
        IntPtr F(string name) => NativeLibrary.GetExport(library, name);
        CommWorld = F("ompi_mpi_comm_world");
        Float = F("ompi_mpi_float");
        Double = F("ompi_mpi_double");
        Byte = F("ompi_mpi_byte");
        Sum = F("ompi_mpi_op_sum");
        InitThread = (delegate* unmanaged<IntPtr, IntPtr, int, int*, int>)F("MPI_Init_thread");
        Initialized = (delegate* unmanaged<int*, int>)F("MPI_Initialized");
        Finalized = (delegate* unmanaged<int*, int>)F("MPI_Finalized");
        Finalize = (delegate* unmanaged<int>)F("MPI_Finalize");
        CommRank = (delegate* unmanaged<IntPtr, int*, int>)F("MPI_Comm_rank");
        CommSize = (delegate* unmanaged<IntPtr, int*, int>)F("MPI_Comm_size");
        Allreduce = (delegate* unmanaged<IntPtr, IntPtr, int, IntPtr, IntPtr, IntPtr, int>)F("MPI_Allreduce");
        Bcast = (delegate* unmanaged<IntPtr, int, IntPtr, int, IntPtr, int>)F("MPI_Bcast");
        Barrier = (delegate* unmanaged<IntPtr, int>)F("MPI_Barrier");
        Abort = (delegate* unmanaged<IntPtr, int, int>)F("MPI_Abort");
    }

    /// <summary>The file that was loaded.</summary>
    public string Path { get; }

    /// <summary><c>MPI_COMM_WORLD</c>.</summary>
    public IntPtr CommWorld { get; }

    /// <summary><c>MPI_FLOAT</c>.</summary>
    public IntPtr Float { get; }

    /// <summary><c>MPI_DOUBLE</c>.</summary>
    public IntPtr Double { get; }

    /// <summary><c>MPI_BYTE</c>.</summary>
    public IntPtr Byte { get; }

    /// <summary><c>MPI_SUM</c>.</summary>
    public IntPtr Sum { get; }

    /// <summary><c>int MPI_Init_thread(int *argc, char ***argv, int required, int *provided)</c>.</summary>
    public readonly delegate* unmanaged<IntPtr, IntPtr, int, int*, int> InitThread;

    /// <summary><c>int MPI_Initialized(int *flag)</c>.</summary>
    public readonly delegate* unmanaged<int*, int> Initialized;

    /// <summary><c>int MPI_Finalized(int *flag)</c>.</summary>
    public readonly delegate* unmanaged<int*, int> Finalized;

    /// <summary><c>int MPI_Finalize(void)</c>.</summary>
    public readonly delegate* unmanaged<int> Finalize;

    /// <summary><c>int MPI_Comm_rank(MPI_Comm comm, int *rank)</c>.</summary>
    public readonly delegate* unmanaged<IntPtr, int*, int> CommRank;

    /// <summary><c>int MPI_Comm_size(MPI_Comm comm, int *size)</c>.</summary>
    public readonly delegate* unmanaged<IntPtr, int*, int> CommSize;

    /// <summary><c>int MPI_Allreduce(const void *sendbuf, void *recvbuf, int count, MPI_Datatype, MPI_Op, MPI_Comm)</c>.</summary>
    public readonly delegate* unmanaged<IntPtr, IntPtr, int, IntPtr, IntPtr, IntPtr, int> Allreduce;

    /// <summary><c>int MPI_Bcast(void *buffer, int count, MPI_Datatype, int root, MPI_Comm)</c>.</summary>
    public readonly delegate* unmanaged<IntPtr, int, IntPtr, int, IntPtr, int> Bcast;

    /// <summary><c>int MPI_Barrier(MPI_Comm comm)</c>.</summary>
    public readonly delegate* unmanaged<IntPtr, int> Barrier;

    /// <summary><c>int MPI_Abort(MPI_Comm comm, int errorcode)</c>.</summary>
    public readonly delegate* unmanaged<IntPtr, int, int> Abort;

    /// <summary>
    /// Loads Open MPI (<c>DPOSHARP_LIBMPI</c> names another file); throws <see cref="DpoSharpException"/> saying how
    /// to install it when it cannot be loaded, or when the library found is not Open MPI.
    /// </summary>
    public static MpiNative Load()
    {
        var names = Environment.GetEnvironmentVariable("DPOSHARP_LIBMPI") is { Length: > 0 } custom ? [custom] : LibraryNames;
        var errors = new List<string>();
        foreach (var name in names)
        {
            // Global first, so Open MPI's plugins see libmpi's symbols; then a handle for GetExport (same library).
            IntPtr global = IntPtr.Zero;
            try
            {
                global = DlOpen(name, RtldNow | RtldGlobal);
            }
            catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
            {
                errors.Add($"{name}: dlopen unavailable ({e.Message})");
            }

            if (global == IntPtr.Zero)
            {
                errors.Add($"{name}: {DlErrorText()}");
                continue;
            }

            if (!NativeLibrary.TryLoad(name, out var handle))
            {
                errors.Add($"{name}: loaded globally but not through NativeLibrary");
                continue;
            }

            if (!NativeLibrary.TryGetExport(handle, "ompi_mpi_comm_world", out _))
            {
                throw new DpoSharpException($"{name} is not Open MPI (no ompi_mpi_comm_world): DpoSharp supports Open MPI only. " +
                    "Install it (Debian/Ubuntu: apt-get install openmpi-bin libopenmpi-dev) and launch with its mpirun.");
            }

            return new MpiNative(handle, name);
        }

        throw new DpoSharpException("this process was started by an MPI launcher (mpirun) but Open MPI's libmpi.so.40 could not be loaded (" +
            string.Join("; ", errors) + "). Install Open MPI (Debian/Ubuntu: apt-get install openmpi-bin libopenmpi-dev), or set DPOSHARP_LIBMPI to the path of libmpi.so.");
    }

    /// <summary>Throws <see cref="InvalidOperationException"/> naming <paramref name="function"/> when an MPI call
    /// returned an error code (Open MPI's default error handler aborts before that; this catches the rest).</summary>
    public static void Check(int code, string function)
    {
        if (code != 0)
        {
            throw new InvalidOperationException($"{function} failed with MPI error code {code}.");
        }
    }

    private static IntPtr DlOpen(string name, int flags)
    {
        try
        {
            return dlopen_libc(name, flags);
        }
        catch (EntryPointNotFoundException)
        {
            return dlopen_libdl(name, flags); // glibc before 2.34 keeps dlopen in libdl
        }
    }

    private static string DlErrorText()
    {
        try
        {
            return Marshal.PtrToStringUTF8(dlerror_libc()) ?? "not found";
        }
        catch (EntryPointNotFoundException)
        {
            return "not found";
        }
    }

    [DllImport("libc.so.6", EntryPoint = "dlopen")]
    private static extern IntPtr dlopen_libc([MarshalAs(UnmanagedType.LPUTF8Str)] string file, int mode);

    [DllImport("libdl.so.2", EntryPoint = "dlopen")]
    private static extern IntPtr dlopen_libdl([MarshalAs(UnmanagedType.LPUTF8Str)] string file, int mode);

    [DllImport("libc.so.6", EntryPoint = "dlerror")]
    private static extern IntPtr dlerror_libc();
}
