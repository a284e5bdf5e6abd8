using System.Runtime.InteropServices;
using static TorchSharp.torch;

namespace DpoSharp.Distributed;

/// <summary>
/// Moves a list of tensors through a collective in flat, contiguous CPU buffers of at most a bucket's size: the
/// tensors are viewed as one stream of elements, cut into buckets (a tensor larger than a bucket spans several), each
/// bucket is filled with <c>copy_</c> (which also converts the dtype and brings CUDA tensors to the CPU), handed to
/// the collective as a pointer and an element count, and copied back. One buffer is reused for every bucket.
/// </summary>
internal sealed class FlatBuckets : IDisposable
{
    /// <summary>The default bucket: 25 MiB (PyTorch DDP's <c>bucket_cap_mb</c>).</summary>
    public const long DefaultBucketBytes = 25L << 20;

    private readonly Dictionary<ScalarType, Tensor> _buffers = [];

    /// <summary>Creates the buckets.</summary>
    /// <param name="bucketBytes">Bytes per bucket (at least 1024).</param>
    public FlatBuckets(long bucketBytes = DefaultBucketBytes)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(bucketBytes, 1024);
        BucketBytes = bucketBytes;
    }

    /// <summary>Bytes per bucket.</summary>
    public long BucketBytes { get; }

    /// <summary>Buckets <see cref="Transfer"/> handed to the collective so far.</summary>
    public long BucketsTransferred { get; private set; }

    /// <summary>
    /// Copies <paramref name="tensors"/> into <paramref name="dtype"/> buckets, calls <paramref name="collective"/>
    /// with each bucket's data pointer and element count, and writes the bucket's values back into the tensors.
    /// Tensors must be contiguous (gradients and parameters are). Call under <c>no_grad</c>.
    /// </summary>
    public void Transfer(IReadOnlyList<Tensor> tensors, ScalarType dtype, Action<IntPtr, int> collective)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        ArgumentNullException.ThrowIfNull(collective);
        long total = tensors.Sum(t => t.numel());
        if (total == 0)
        {
            return;
        }

        int elementSize = (int)ElementSize(dtype);
        long capacity = Math.Max(1, Math.Min(BucketBytes / elementSize, int.MaxValue / elementSize));
        var buffer = Buffer(dtype, Math.Min(capacity, total));
        var flats = tensors.Select(t => t.view(-1)).ToList();  // (n_i) views: writes reach the tensors
        try
        {
            int ti = 0;
            long tOffset = 0;
            while (ti < flats.Count)
            {
                // Fill one bucket from (ti, tOffset) on; remember the pieces to copy back.
                var pieces = new List<(int Tensor, long Offset, long BucketOffset, long Length)>();
                long filled = 0;
                while (ti < flats.Count && filled < capacity)
                {
                    long n = flats[ti].numel() - tOffset;
                    long take = Math.Min(n, capacity - filled);
                    if (take > 0)
                    {
                        buffer.narrow(0, filled, take).copy_(flats[ti].narrow(0, tOffset, take));
                        pieces.Add((ti, tOffset, filled, take));
                        filled += take;
                        tOffset += take;
                    }

                    if (tOffset >= flats[ti].numel())
                    {
                        ti++;
                        tOffset = 0;
                    }
                }

                collective(DataPointer(buffer), (int)filled);
                BucketsTransferred++;
                foreach (var (t, offset, bucketOffset, length) in pieces)
                {
                    flats[t].narrow(0, offset, length).copy_(buffer.narrow(0, bucketOffset, length));
                }
            }
        }
        finally
        {
            foreach (var f in flats)
            {
                f.Dispose();
            }
        }
    }

    /// <summary>The address of a CPU tensor's first element (the tensor must stay alive while it is used).</summary>
    public static IntPtr DataPointer(Tensor t)
    {
        ArgumentNullException.ThrowIfNull(t);
        if (t.device_type != TorchSharp.DeviceType.CPU || !t.is_contiguous())
        {
            throw new InvalidOperationException("a collective buffer must be a contiguous CPU tensor.");
        }

        var p = THSTensor_data(t.Handle);
        if (p == IntPtr.Zero)
        {
            throw new InvalidOperationException("libtorch returned no data pointer for a collective buffer.");
        }

        return p;
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        foreach (var b in _buffers.Values)
        {
            b.Dispose();
        }

        _buffers.Clear();
    }

    private static long ElementSize(ScalarType dtype)
    {
        using var probe = empty(0, dtype, CPU);
        return probe.element_size();
    }

    private Tensor Buffer(ScalarType dtype, long elements)
    {
        if (!_buffers.TryGetValue(dtype, out var b) || b.numel() < elements)
        {
            b?.Dispose();
            b = empty(elements, dtype, CPU).DetachFromDisposeScope();  // (capacity) reused across calls
            _buffers[dtype] = b;
        }

        return b;
    }

    [DllImport("LibTorchSharp")]
    private static extern IntPtr THSTensor_data(IntPtr handle);
}
