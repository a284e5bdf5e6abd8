using System.Diagnostics;
using DpoSharp.Native;
using TorchSharp;
using static TorchSharp.torch;

namespace DpoSharp.Diagnostics;

/// <summary>One matmul speed measurement: <see cref="GigaFlops"/> = 2·n³·repeats / seconds.</summary>
/// <param name="DType">The dtype of both operands.</param>
/// <param name="Size">n: the operands are (n, n).</param>
/// <param name="Repeats">Timed multiplications (after one warm-up).</param>
/// <param name="Seconds">Wall time of the timed multiplications.</param>
/// <param name="GigaFlops">Throughput.</param>
public sealed record MatmulSpeedResult(ScalarType DType, int Size, int Repeats, double Seconds, double GigaFlops);

/// <summary>
/// Measures (n, n) × (n, n) matmul throughput per dtype on a device (for <c>torch_dtype</c> choices and the bench:
/// on CPUs without bf16/fp16 matrix instructions, reduced precision is far slower than fp32).
/// </summary>
public static class MatmulSpeed
{
    /// <summary>Times <paramref name="repeats"/> multiplications of random (n, n) matrices in <paramref name="dtype"/>
    /// on <paramref name="device"/> (default CPU) after one warm-up, or stops early once <paramref name="maxSeconds"/> is spent.</summary>
    public static MatmulSpeedResult Measure(ScalarType dtype, int n = 512, int repeats = 3, Device? device = null, double maxSeconds = 60)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(n, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(repeats, 1);
        TorchSharpRuntime.EnsureLoadable();
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        device ??= CPU;
        var a = randn(n, n).to(dtype, device);   // (n, n)
        var b = randn(n, n).to(dtype, device);   // (n, n)
        Sync(a.mm(b), device);
        var sw = Stopwatch.StartNew();
        int done = 0;
        while (done < repeats && (done == 0 || sw.Elapsed.TotalSeconds < maxSeconds))
        {
            Sync(a.mm(b), device);
            done++;
        }

        double seconds = sw.Elapsed.TotalSeconds;
        return new MatmulSpeedResult(dtype, n, done, seconds, 2.0 * n * n * n * done / seconds / 1e9);
    }

    /// <summary>
    /// The best fp32 throughput over (M, K) × (K, N) matmuls of the given shapes (a model's own linear layers over
    /// a batch's tokens): each shape once to warm up, then timed for about <paramref name="secondsPerShape"/>.
    /// Returns the fastest shape's measurement (<see cref="MatmulSpeedResult.Size"/> = its M).
    /// </summary>
    public static MatmulSpeedResult PeakOnShapes(IEnumerable<(long M, long K, long N)> shapes, Device? device = null, double secondsPerShape = 1.0)
    {
        ArgumentNullException.ThrowIfNull(shapes);
        TorchSharpRuntime.EnsureLoadable();
        device ??= CPU;
        MatmulSpeedResult? best = null;
        foreach (var (m, k, n) in shapes)
        {
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            var a = randn(m, k).to(device);   // (M, K)
            var w = randn(n, k).to(device);   // (N, K): a linear layer's weight, used as x · wᵀ
            Sync(a.mm(w.t()), device);
            var sw = Stopwatch.StartNew();
            int done = 0;
            while (done < 2 || sw.Elapsed.TotalSeconds < secondsPerShape)
            {
                Sync(a.mm(w.t()), device);
                done++;
            }

            double seconds = sw.Elapsed.TotalSeconds;
            var r = new MatmulSpeedResult(ScalarType.Float32, (int)m, done, seconds, 2.0 * m * k * n * done / seconds / 1e9);
            if (best is null || r.GigaFlops > best.GigaFlops)
            {
                best = r;
            }
        }

        return best ?? throw new ArgumentException("no matmul shapes given", nameof(shapes));
    }

    private static void Sync(Tensor t, Device device)
    {
        if (device.type == DeviceType.CUDA)
        {
            cuda.synchronize(device);
        }

        t.Dispose();
    }
}
