using static TorchSharp.torch;

namespace DpoSharp.Modules;

/// <summary>RoPE (rotate-half layout) with <c>rope_theta</c>, linear or llama3 scaling, and partial rotary dims.</summary>
public sealed class RotaryEmbedding
{
    private readonly float[] _invFreq;

    /// <summary>
    /// Builds the inverse frequencies for <paramref name="rotaryDim"/> rotated dims per head with base
    /// <paramref name="theta"/> (<c>rope_theta</c>), optionally rescaled by <paramref name="scaling"/>.
    /// </summary>
    public RotaryEmbedding(int rotaryDim, double theta, RopeScaling? scaling = null)
    {
        RotaryDim = rotaryDim;
        int half = RotaryDim / 2;
        var inv = new double[half];
        for (int i = 0; i < half; i++)
        {
            inv[i] = 1.0 / Math.Pow(theta, (2.0 * i) / RotaryDim);
        }

        if (scaling is { Type: "linear" } lin)
        {
            for (int i = 0; i < half; i++)
            {
                inv[i] /= lin.Factor;
            }
        }
        else if (scaling is { Type: "llama3" } l3)
        {
            double lowWavelen = l3.OriginalMaxPositionEmbeddings / l3.LowFreqFactor;
            double highWavelen = l3.OriginalMaxPositionEmbeddings / l3.HighFreqFactor;
            for (int i = 0; i < half; i++)
            {
                double wavelen = 2 * Math.PI / inv[i];
                if (wavelen > lowWavelen)
                {
                    inv[i] /= l3.Factor;
                }
                else if (wavelen >= highWavelen)
                {
                    double smooth = (l3.OriginalMaxPositionEmbeddings / wavelen - l3.LowFreqFactor) / (l3.HighFreqFactor - l3.LowFreqFactor);
                    inv[i] = ((1 - smooth) * inv[i] / l3.Factor) + (smooth * inv[i]);
                }
            }
        }

        _invFreq = inv.Select(x => (float)x).ToArray();
    }

    /// <summary>Rotated dims per head.</summary>
    public int RotaryDim { get; }

    /// <summary>The inverse frequencies (RotaryDim / 2).</summary>
    public IReadOnlyList<float> InverseFrequencies => _invFreq;

    /// <summary>cos and sin (B, 1, T, RotaryDim) in <paramref name="dtype"/> for <paramref name="positionIds"/> (B, T).</summary>
    public (Tensor Cos, Tensor Sin) CosSin(Tensor positionIds, ScalarType dtype)
    {
        var inv = tensor(_invFreq, device: positionIds.device);                        // (rd/2)
        var freqs = positionIds.to(ScalarType.Float32).unsqueeze(-1) * inv;            // (B, T, rd/2)
        var emb = cat([freqs, freqs], -1);                                             // (B, T, rd)
        return (emb.cos().unsqueeze(1).to(dtype), emb.sin().unsqueeze(1).to(dtype));   // (B, 1, T, rd)
    }

    /// <summary>Applies the rotation to the first RotaryDim dims of <paramref name="x"/> (B, h, T, hd).</summary>
    public static Tensor Apply(Tensor x, Tensor cos, Tensor sin)
    {
        long rd = cos.shape[^1];
        long hd = x.shape[^1];
        var xr = rd == hd ? x : x.narrow(-1, 0, rd);
        long half = rd / 2;
        var rotated = cat([xr.narrow(-1, half, rd - half).neg(), xr.narrow(-1, 0, half)], -1);
        var outRot = (xr * cos) + (rotated * sin);                                     // (B, h, T, rd)
        return rd == hd ? outRot : cat([outRot, x.narrow(-1, rd, hd - rd)], -1);       // (B, h, T, hd)
    }
}
