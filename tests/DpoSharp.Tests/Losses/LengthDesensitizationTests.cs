using DpoSharp.Losses;
using static TorchSharp.torch;

namespace DpoSharp.Tests.Losses;

/// <summary>
/// LD-DPO (<see cref="LengthDesensitization"/>, <c>ld_alpha</c>): on a hand-made batch of two pairs (completions of
/// different lengths, left prompts, right padding), the weighted sums of the full-logits path
/// (<see cref="SequenceLogProbs"/>) and of the chunked hidden-state path (<see cref="HiddenStateLogProbs"/>) equal
/// the closed form in doubles: Σ over the first ℓ = min(chosen, rejected) completion tokens + α · Σ over the rest;
/// the chunked path's gradients equal the full-logits path's with the same weights.
/// </summary>
public class LengthDesensitizationTests
{
    private const int P = 2, B = 2 * P, T = 9, D = 4, V = 7;
    private const double Alpha = 0.25;

    // Rows: chosen 0 (5 completion tokens), chosen 1 (2), rejected 0 (3), rejected 1 (4, padded after).
    // Public lengths: pair 0 → 3, pair 1 → 2.
    private static readonly int[][] MaskRows =
    [
        [0, 0, 0, 0, 1, 1, 1, 1, 1],
        [0, 0, 0, 1, 1, 0, 0, 0, 0],
        [0, 0, 0, 0, 1, 1, 1, 0, 0],
        [0, 0, 1, 1, 1, 1, 0, 0, 0],
    ];

    public LengthDesensitizationTests() => DpoSharp.Native.TorchSharpRuntime.EnsureLoadable();

    private static (float[] Hidden, float[] Weight, long[] Ids) Data()
    {
        var rng = new Random(23);
        var hidden = Enumerable.Range(0, B * T * D).Select(_ => (float)((rng.NextDouble() * 4) - 2)).ToArray();
        var weight = Enumerable.Range(0, V * D).Select(_ => (float)((rng.NextDouble() * 2) - 1)).ToArray();
        var ids = Enumerable.Range(0, B * T).Select(_ => (long)rng.Next(V)).ToArray();
        return (hidden, weight, ids);
    }

    /// <summary>The closed form in doubles: logits = hidden · Wᵀ, per-token log-probs in completion order, weighted.</summary>
    private static double[] Expected(float[] hidden, float[] weight, long[] ids, double alpha)
    {
        var completionLengths = MaskRows.Select(r => r.Sum()).ToArray();
        var result = new double[B];
        for (int b = 0; b < B; b++)
        {
            int pair = b % P;
            int shared = Math.Min(completionLengths[pair], completionLengths[P + pair]);
            int k = 0;
            for (int t = 1; t < T; t++)
            {
                if (MaskRows[b][t] == 0)
                {
                    continue;
                }

                var z = new double[V];
                for (int v = 0; v < V; v++)
                {
                    for (int d = 0; d < D; d++)
                    {
                        z[v] += hidden[(((b * T) + t - 1) * D) + d] * (double)weight[(v * D) + d];
                    }
                }

                double max = z.Max();
                double lse = max + Math.Log(z.Sum(x => Math.Exp(x - max)));
                double logp = z[ids[(b * T) + t]] - lse;
                k++;
                result[b] += (k <= shared ? 1 : alpha) * logp;
            }
        }

        return result;
    }

    [Fact]
    public void TokenWeightsAreOneOverThePublicLengthAlphaAfterAndZeroOutsideTheCompletion()
    {
        using var scope = NewDisposeScope();
        var mask = tensor(MaskRows.SelectMany(r => r.Select(x => (long)x)).ToArray()).reshape(B, T);
        var w = LengthDesensitization.TokenWeights(mask, P, Alpha).data<float>().ToArray();
        float a = (float)Alpha;
        float[][] expected =
        [
            [0, 0, 0, 0, 1, 1, 1, a, a],
            [0, 0, 0, 1, 1, 0, 0, 0, 0],
            [0, 0, 0, 0, 1, 1, 1, 0, 0],
            [0, 0, 1, 1, a, a, 0, 0, 0],
        ];
        Assert.Equal(expected.SelectMany(r => r).ToArray(), w);
    }

    [Theory]
    [InlineData(0.0)]
    [InlineData(Alpha)]
    [InlineData(1.0)]
    public void BothLogProbPathsGiveTheClosedFormAndTheSameGradients(double alpha)
    {
        var (hiddenValues, weightValues, idValues) = Data();
        var expected = Expected(hiddenValues, weightValues, idValues, alpha);
        using var scope = NewDisposeScope();
        var ids = tensor(idValues).reshape(B, T);
        var mask = tensor(MaskRows.SelectMany(r => r.Select(x => (long)x)).ToArray()).reshape(B, T);
        var tokenWeights = LengthDesensitization.TokenWeights(mask, P, alpha);
        var coef = tensor(new float[] { 1, -2, 0.5f, 3 });

        (double[] Sums, float[] DHidden, float[] DWeight) Run(Func<Tensor, Tensor, Tensor> sums)
        {
            var hidden = tensor(hiddenValues).reshape(B, T, D).requires_grad_(true);
            var weight = tensor(weightValues).reshape(V, D).requires_grad_(true);
            var s = sums(hidden, weight);
            (s * coef).sum().backward();
            return (s.detach().to(ScalarType.Float64).data<double>().ToArray(), hidden.grad!.data<float>().ToArray(), weight.grad!.data<float>().ToArray());
        }

        var full = Run((h, w) => SequenceLogProbs.Compute(nn.functional.linear(h, w), ids, mask, chunkSize: 3, tokenWeights: tokenWeights).Sums);
        foreach (bool completionOnly in new[] { true, false })
        {
            var chunked = Run((h, w) => HiddenStateLogProbs.Compute(h, x => nn.functional.linear(x, w), [w], ids, mask, chunkSize: 2, completionOnly, tokenWeights: tokenWeights).LogProbs.Sums);
            for (int b = 0; b < B; b++)
            {
                Assert.True(Math.Abs(full.Sums[b] - expected[b]) < 1e-4, $"full logits, row {b}: {full.Sums[b]} vs {expected[b]}");
                Assert.True(Math.Abs(chunked.Sums[b] - expected[b]) < 1e-4, $"chunked (completion only {completionOnly}), row {b}: {chunked.Sums[b]} vs {expected[b]}");
            }

            for (int i = 0; i < full.DHidden.Length; i++)
            {
                Assert.True(Math.Abs(full.DHidden[i] - chunked.DHidden[i]) < 1e-5, $"d hidden [{i}]");
            }

            for (int i = 0; i < full.DWeight.Length; i++)
            {
                Assert.True(Math.Abs(full.DWeight[i] - chunked.DWeight[i]) < 1e-5, $"d weight [{i}]");
            }
        }

        // The token counts stay unweighted.
        var counts = SequenceLogProbs.Compute(nn.functional.linear(tensor(hiddenValues).reshape(B, T, D), tensor(weightValues).reshape(V, D)), ids, mask, tokenWeights: tokenWeights).TokenCounts;
        Assert.Equal(MaskRows.Select(r => (float)r.Sum()).ToArray(), counts.data<float>().ToArray());
    }
}

/// <summary>
/// <c>ld_alpha</c> in <see cref="DpoSharp.Training.Objectives.DpoObjective"/>: the policy's log-probs are the weighted
/// sums, the reference's stay plain sums (TRL 0.28), so <c>rewards/chosen</c> = β·(weighted policy − plain reference).
/// </summary>
public class LengthDesensitizedObjectiveTests
{
    public LengthDesensitizedObjectiveTests() => DpoSharp.Native.TorchSharpRuntime.EnsureLoadable();

    [Fact]
    public void ThePolicyLogProbsAreWeightedAndTheReferenceOnesAreNot()
    {
        const double alpha = 0.3, beta = 0.1;
        var pairs = TinyData.Pairs(4);
        var collator = new DpoSharp.Data.PreferenceCollator(padTokenId: 0);
        using var policy = new TinyCausalLM(seed: 4);
        using var reference = new TinyCausalLM(seed: 5);
        var options = new DpoSharp.Training.DpoOptions { LdAlpha = alpha, Beta = beta, MaxSteps = 1 };
        using var objective = new DpoSharp.Training.Objectives.DpoObjective(policy, reference, options, pairs, null, collator);
        objective.Begin(null);
        using var scope = NewDisposeScope();
        using var batch = collator.Collate(pairs);
        policy.Module.eval();
        reference.Module.eval();
        Dictionary<string, double> metrics;
        using (no_grad())
        {
            using var stats = objective.Compute(batch, DpoSharp.Training.Engine.DataSplit.Train).Statistics;
            metrics = stats.ToMetrics("");
        }

        int p = pairs.Count;
        double[] Sums(TinyCausalLM m, Tensor? w)
        {
            using var noGrad = no_grad();
            var logits = m.Forward(batch.InputIds, batch.AttentionMask, batch.PositionIds);
            return SequenceLogProbs.Compute(logits, batch.InputIds, batch.CompletionMask, tokenWeights: w).Sums.to(ScalarType.Float64).data<double>().ToArray();
        }

        var weighted = Sums(policy, LengthDesensitization.TokenWeights(batch.CompletionMask, p, alpha));
        var plainPolicy = Sums(policy, null);
        var plainRef = Sums(reference, null);
        Assert.True(Enumerable.Range(0, 2 * p).Any(i => Math.Abs(weighted[i] - plainPolicy[i]) > 1e-3), "the pairs have no tail: the test would not tell weighted from plain");
        Assert.Equal(weighted[..p].Average(), metrics["logps/chosen"], 4);
        Assert.Equal(weighted[p..].Average(), metrics["logps/rejected"], 4);
        Assert.Equal(Enumerable.Range(0, p).Average(i => beta * (weighted[i] - plainRef[i])), metrics["rewards/chosen"], 4);
        Assert.Equal(Enumerable.Range(0, p).Average(i => beta * (weighted[p + i] - plainRef[p + i])), metrics["rewards/rejected"], 4);
    }
}
