using DpoSharp.Losses;
using static TorchSharp.torch;

namespace DpoSharp.Tests.Losses;

/// <summary>
/// <see cref="SequenceLogProbs"/> against a plain double-precision re-implementation: shifted labels, masked
/// (prompt and padding) positions ignored, every chunk size, mean logits, token counts and the gradient
/// d(sum)/d(logits) = mask · (onehot(label) − softmax).
/// </summary>
public class SequenceLogProbsTests
{
    public SequenceLogProbsTests() => DpoSharp.Native.TorchSharpRuntime.EnsureLoadable();

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    [InlineData(128)]
    public void SumsCountsMeanLogitsAndGradientMatchAPlainComputation(int chunkSize)
    {
        const int B = 3, T = 8, V = 11;
        var rng = new Random(17);
        var logitValues = new float[B * T * V];
        for (int i = 0; i < logitValues.Length; i++)
        {
            logitValues[i] = (float)((rng.NextDouble() * 8) - 4);
        }

        var ids = new long[B * T];
        for (int i = 0; i < ids.Length; i++)
        {
            ids[i] = rng.Next(V);
        }

        // Row 0: prompt 3, completion 5. Row 1: prompt 2, completion 3, then padding. Row 2: completion from position 1 only.
        int[][] maskRows = [[0, 0, 0, 1, 1, 1, 1, 1], [0, 0, 1, 1, 1, 0, 0, 0], [0, 1, 1, 1, 1, 1, 1, 1]];
        var mask = maskRows.SelectMany(r => r.Select(x => (long)x)).ToArray();

        using var scope = NewDisposeScope();
        var logits = tensor(logitValues).reshape(B, T, V).requires_grad_(true);
        var result = SequenceLogProbs.Compute(logits, tensor(ids).reshape(B, T), tensor(mask).reshape(B, T), chunkSize);
        result.Sums.sum().backward();
        var grad = logits.grad!.data<float>().ToArray();
        var sums = result.Sums.data<float>().ToArray();
        var counts = result.TokenCounts.data<float>().ToArray();
        var meanLogits = result.MeanLogits.data<float>().ToArray();

        for (int b = 0; b < B; b++)
        {
            double expectedSum = 0, logitSum = 0;
            int n = 0;
            var expectedGrad = new double[T * V];
            for (int t = 1; t < T; t++)
            {
                if (maskRows[b][t] == 0)
                {
                    continue;
                }

                // Token t is predicted by the logits at t-1.
                double Logit(int v) => logitValues[(((b * T) + t - 1) * V) + v];
                double max = Enumerable.Range(0, V).Max(Logit);
                double lse = max + Math.Log(Enumerable.Range(0, V).Sum(v => Math.Exp(Logit(v) - max)));
                int label = (int)ids[(b * T) + t];
                expectedSum += Logit(label) - lse;
                logitSum += Enumerable.Range(0, V).Average(Logit);
                n++;
                for (int v = 0; v < V; v++)
                {
                    expectedGrad[((t - 1) * V) + v] = (v == label ? 1 : 0) - Math.Exp(Logit(v) - lse);
                }
            }

            Assert.True(Math.Abs(sums[b] - expectedSum) < 1e-4, $"row {b}: {sums[b]} vs {expectedSum}");
            Assert.Equal(n, counts[b]);
            Assert.True(Math.Abs(meanLogits[b] - (logitSum / n)) < 1e-5, $"row {b} mean logit {meanLogits[b]} vs {logitSum / n}");
            for (int k = 0; k < T * V; k++)
            {
                Assert.True(Math.Abs(grad[(b * T * V) + k] - expectedGrad[k]) < 1e-5, $"row {b} grad [{k / V}, {k % V}]");
            }
        }

        Assert.False(result.MeanLogits.requires_grad);
    }
}
