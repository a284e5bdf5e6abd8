using static TorchSharp.torch;

namespace DpoSharp.Tests.TestSupport;

/// <summary>Bit-for-bit tensor comparison (shape, dtype and every byte; unlike <c>eq</c>, −0 ≠ +0).</summary>
public static class TensorBits
{
    /// <summary>True when <paramref name="a"/> and <paramref name="b"/> have the same shape, dtype and bytes.</summary>
    public static bool Identical(Tensor a, Tensor b)
    {
        if (a.dtype != b.dtype || !a.shape.SequenceEqual(b.shape))
        {
            return false;
        }

        return Bytes(a).AsSpan().SequenceEqual(Bytes(b));
    }

    /// <summary>The tensor's bytes (CPU, contiguous).</summary>
    public static byte[] Bytes(Tensor t)
    {
        using var c = t.detach().cpu().contiguous();
        return c.bytes.ToArray();
    }
}
