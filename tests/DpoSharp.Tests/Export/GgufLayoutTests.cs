using DpoSharp.Export;

namespace DpoSharp.Tests.Export;

/// <summary>The converter's tensor transforms against values worked out by hand: the Llama Q/K permutation and the
/// llama3 RoPE factors.</summary>
public sealed class GgufLayoutTests
{
    [Fact]
    public void QkPermutationInterleavesTheTwoHalvesOfEachHead()
    {
        // 2 heads of 4 rows, rows 2 values long: head rows [r0 r1 r2 r3] become [r0 r2 r1 r3] (row 2i+a = row a·2+i).
        float[] rows = [0, 0.5f, 1, 1.5f, 2, 2.5f, 3, 3.5f, 4, 4.5f, 5, 5.5f, 6, 6.5f, 7, 7.5f];
        Assert.Equal([0, 0.5f, 2, 2.5f, 1, 1.5f, 3, 3.5f, 4, 4.5f, 6, 6.5f, 5, 5.5f, 7, 7.5f], GgufTensorNames.PermuteRows(rows, heads: 2, columns: 2));

        // One head of 8 (a bias): [b0..b7] → [b0 b4 b1 b5 b2 b6 b3 b7].
        Assert.Equal([0, 4, 1, 5, 2, 6, 3, 7], GgufTensorNames.PermuteRows([0, 1, 2, 3, 4, 5, 6, 7], heads: 1, columns: 1));
        Assert.Throws<ArgumentException>(() => GgufTensorNames.PermuteRows(new float[6], heads: 2, columns: 1)); // heads of 3 rows
    }

    [Fact]
    public void Llama3RopeFactorsAreOneForShortWavelengthsAndTheFactorForLongOnes()
    {
        // head_dim 8, theta 10000: frequencies 1, 0.1, 0.01, 0.001, wavelengths 2π·{1, 10, 100, 1000}. Original context
        // 64, low/high factors 1 and 4: below 64/4 = 16 the divisor is 1, above 64/1 = 64 it is the factor 8, and
        // 62.83 lies between: s = (64/62.83 − 1)/(4 − 1) = 0.0062, divisor 1/((1 − s)/8 + s) = 7.667.
        var f = GgufModelPlan.Llama3RopeFactors(8, 10000, 8, 1, 4, 64);
        double s = ((64 / (2 * Math.PI * 10)) - 1) / 3;
        Assert.Equal(4, f.Length);
        Assert.Equal(1f, f[0]);
        Assert.Equal(1 / (((1 - s) / 8) + s), f[1], 4);
        Assert.Equal(7.667, f[1], 3);
        Assert.Equal(8f, f[2]);
        Assert.Equal(8f, f[3]);
    }
}
