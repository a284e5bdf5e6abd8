using System.Runtime.InteropServices;

namespace DpoSharp.Native;

/// <summary>
/// glibc's allocator settings for training. By default glibc serves blocks below a threshold that grows to 32 MB
/// from its heap and keeps them after they are freed; a training step allocates and frees thousands of 1–40 MB
/// activation tensors, the heap fragments, and the process's resident memory ends up far above what is live
/// (Qwen2.5-0.5B LoRA DPO at 2 × (128 + 128) tokens: 3.43 GB peak with glibc's defaults, 2.58 GB with 1 MB blocks
/// mapped and unmapped individually; BENCHMARKS.md). <see cref="ReleaseLargeBlocks"/> sets the threshold once for the
/// process; the <c>dposharp</c> command calls it at start-up.
/// </summary>
public static partial class NativeAllocator
{
    /// <summary>The threshold <see cref="ReleaseLargeBlocks"/> sets by default: 1 MiB.</summary>
    public const int DefaultThresholdBytes = 1 << 20;

    private const int MmapThreshold = -3; // glibc's M_MMAP_THRESHOLD

    /// <summary>
    /// Makes glibc map every block of at least <paramref name="thresholdBytes"/> separately and return it to the
    /// system when freed (<c>mallopt(M_MMAP_THRESHOLD, …)</c>). Does nothing (returns false) on other systems or C
    /// libraries, or when the user set <c>MALLOC_MMAP_THRESHOLD_</c> themselves.
    /// </summary>
    /// <returns>True when the setting was applied.</returns>
    public static bool ReleaseLargeBlocks(int thresholdBytes = DefaultThresholdBytes)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(thresholdBytes, 4096);
        if (!OperatingSystem.IsLinux() || Environment.GetEnvironmentVariable("MALLOC_MMAP_THRESHOLD_") is not null)
        {
            return false;
        }

        try
        {
            return Mallopt(MmapThreshold, thresholdBytes) == 1;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return false;                                                   // not glibc (e.g. musl): leave it
        }
    }

    [LibraryImport("libc.so.6", EntryPoint = "mallopt")]
    private static partial int Mallopt(int param, int value);
}
