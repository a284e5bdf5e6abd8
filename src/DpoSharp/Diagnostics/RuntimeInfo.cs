using System.Runtime.Intrinsics.X86;
using DpoSharp.Native;
using TorchSharp;

namespace DpoSharp.Diagnostics;

/// <summary>What <c>dposharp info</c> reports: real values read from libtorch.</summary>
public sealed record RuntimeInfo(
    string DpoSharpVersion,
    string TorchSharpVersion,
    string LibTorchVersion,
    int Threads,
    int InteropThreads,
    string DefaultDevice,
    bool CudaAvailable,
    int CudaDevices,
    IReadOnlyList<string> CpuExtensions,
    string LibStdCxxPatch)
{
    /// <summary>Reads the values from the loaded TorchSharp / libtorch.</summary>
    public static RuntimeInfo Read()
    {
        TorchSharpRuntime.EnsureLoadable();
        var torchSharp = typeof(torch).Assembly.GetName().Version?.ToString(3) ?? "?";
        var cuda = torch.cuda.is_available();
        var ext = new List<string>();
        if (Sse42.IsSupported)
        {
            ext.Add("SSE4.2");
        }

        if (Avx.IsSupported)
        {
            ext.Add("AVX");
        }

        if (Avx2.IsSupported)
        {
            ext.Add("AVX2");
        }

        if (Fma.IsSupported)
        {
            ext.Add("FMA");
        }

        if (Avx512F.IsSupported)
        {
            ext.Add("AVX512F");
        }

        if (Avx512BW.IsSupported)
        {
            ext.Add("AVX512BW");
        }

        if (System.Runtime.Intrinsics.Arm.AdvSimd.IsSupported)
        {
            ext.Add("NEON");
        }

        var libstdcxx = LibStdCxxVersionPatcher.FindSystemLibStdCxx();
        var outcomes = TorchSharpRuntime.PatchLog.Select(l => l.Split(": ").Skip(1).FirstOrDefault()?.Split(' ')[0]).Distinct();
        var patch = TorchSharpRuntime.PatchError
            ?? (TorchSharpRuntime.PatchLog.Count == 0
                ? "not applicable"
                : $"{string.Join(", ", outcomes)} (libLibTorchSharp.so vs {libstdcxx ?? "?"})");
        return new RuntimeInfo(
            typeof(RuntimeInfo).Assembly.GetName().Version?.ToString(3) ?? "?",
            torchSharp,
            torch.__version__,
            torch.get_num_threads(),
            torch.get_num_interop_threads(),
            cuda ? "cuda" : "cpu",
            cuda,
            cuda ? torch.cuda.device_count() : 0,
            ext,
            patch);
    }
}
