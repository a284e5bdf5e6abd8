using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace DpoSharp.IO.Gguf;

/// <summary>
/// Encodes fp32 values as the bytes of a ggml tensor: F32, F16 (round to nearest even) and Q8_0 (ggml's
/// <c>quantize_row_q8_0_ref</c>: per block of 32, d = max|x| / 127 stored as f16, q = round(x / d) away from zero).
/// </summary>
public static class GgmlQuantization
{
    /// <summary>Values per Q8_0 block.</summary>
    public const int Q8_0BlockSize = 32;

    /// <summary>Bytes per Q8_0 block: an f16 scale and 32 signed bytes.</summary>
    public const int Q8_0BlockBytes = 2 + Q8_0BlockSize;

    /// <summary>
    /// Bytes a tensor of <paramref name="elements"/> values takes in <paramref name="type"/>.
    /// </summary>
    public static long ByteSize(GgmlType type, long elements) => type switch
    {
        GgmlType.F32 => 4 * elements,
        GgmlType.F16 => 2 * elements,
        GgmlType.Q8_0 => elements / Q8_0BlockSize * Q8_0BlockBytes,
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, null),
    };

    /// <summary>Whether rows of <paramref name="rowLength"/> values can be stored in <paramref name="type"/>
    /// (Q8_0 needs whole blocks of 32 per row).</summary>
    public static bool Fits(GgmlType type, long rowLength) => type != GgmlType.Q8_0 || rowLength % Q8_0BlockSize == 0;

    /// <summary>Encodes <paramref name="values"/> (row-major) as <paramref name="type"/>.</summary>
    /// <exception cref="ArgumentException">Q8_0 with a length that is not a multiple of 32.</exception>
    public static byte[] Encode(GgmlType type, ReadOnlySpan<float> values) => type switch
    {
        GgmlType.F32 => ToF32(values),
        GgmlType.F16 => ToF16(values),
        GgmlType.Q8_0 => ToQ8_0(values),
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, null),
    };

    /// <summary>Little-endian fp32 bytes: the values' own bytes (TorchSharp's hosts, x64 and arm64, are
    /// little-endian, as <see cref="SafeTensorsWriter"/> assumes).</summary>
    public static byte[] ToF32(ReadOnlySpan<float> values) => MemoryMarshal.AsBytes(values).ToArray();

    /// <summary>Little-endian IEEE half bytes (round to nearest even, as numpy's <c>astype(float16)</c>).</summary>
    public static byte[] ToF16(ReadOnlySpan<float> values)
    {
        var bytes = new byte[values.Length * 2];
        for (int i = 0; i < values.Length; i++)
        {
            BinaryPrimitives.WriteHalfLittleEndian(bytes.AsSpan(i * 2), (Half)values[i]);
        }

        return bytes;
    }

    /// <summary>Q8_0 blocks of <paramref name="values"/> (a multiple of 32 long).</summary>
    public static byte[] ToQ8_0(ReadOnlySpan<float> values)
    {
        if (values.Length % Q8_0BlockSize != 0)
        {
            throw new ArgumentException($"Q8_0 needs a multiple of {Q8_0BlockSize} values (got {values.Length}).", nameof(values));
        }

        int blocks = values.Length / Q8_0BlockSize;
        var bytes = new byte[blocks * Q8_0BlockBytes];
        for (int b = 0; b < blocks; b++)
        {
            var x = values.Slice(b * Q8_0BlockSize, Q8_0BlockSize);
            float amax = 0;
            foreach (var v in x)
            {
                amax = MathF.Max(amax, MathF.Abs(v));
            }

            float d = amax / 127f;
            float id = d != 0 ? 1f / d : 0f;
            var block = bytes.AsSpan(b * Q8_0BlockBytes, Q8_0BlockBytes);
            BinaryPrimitives.WriteHalfLittleEndian(block, (Half)d);
            for (int j = 0; j < Q8_0BlockSize; j++)
            {
                block[2 + j] = (byte)(sbyte)MathF.Round(x[j] * id, MidpointRounding.AwayFromZero);
            }
        }

        return bytes;
    }
}
