using DpoSharp.Losses;
using static TorchSharp.torch;

namespace DpoSharp.Tests.Losses;

public class WpoWeightsTests
{
    public WpoWeightsTests() => DpoSharp.Native.TorchSharpRuntime.EnsureLoadable();

    [Fact]
    public void MatchesAPlainComputation()
    {
        using var scope = NewDisposeScope();
        manual_seed(3);
        const int rows = 4, t = 6, v = 7;
        var logits = randn(rows, t, v) * 2;
        var ids = randint(0, v, [rows, t]);
        var mask = tensor(new long[]
        {
            0, 0, 1, 1, 1, 0,
            0, 1, 1, 1, 1, 1,
            0, 0, 0, 1, 1, 0,
            0, 1, 1, 0, 0, 0,
        }).reshape(rows, t);
        var w = WpoWeights.Compute(logits, ids, mask, chunkSize: 2);

        var l = logits.data<float>().ToArray();
        var id = ids.data<long>().ToArray();
        var m = mask.data<long>().ToArray();
        double[] mean = new double[rows];
        for (int r = 0; r < rows; r++)
        {
            double sum = 0;
            int n = 0;
            for (int pos = 1; pos < t; pos++)
            {
                if (m[(r * t) + pos] == 0)
                {
                    continue;
                }

                // Position pos-1 predicts token pos.
                var row = Enumerable.Range(0, v).Select(k => (double)l[(((r * t) + pos - 1) * v) + k]).ToArray();
                double max = row.Max();
                var p = row.Select(x => Math.Exp(x - max)).ToArray();
                double z = p.Sum();
                p = [.. p.Select(x => x / z)];
                sum += Math.Log(p[id[(r * t) + pos]]) - Math.Log(p.Sum(x => x * x));
                n++;
            }

            mean[r] = sum / n;
        }

        var got = w.data<float>().ToArray();
        Assert.Equal(2, got.Length);
        for (int i = 0; i < 2; i++)
        {
            Assert.Equal(Math.Min(1, Math.Exp(mean[i] + mean[i + 2])), got[i], 5);
        }

        Assert.Contains(got, g => g < 0.99f);             // the clamp at 1 does not hide the computation
        Assert.False(w.requires_grad);
    }
}
