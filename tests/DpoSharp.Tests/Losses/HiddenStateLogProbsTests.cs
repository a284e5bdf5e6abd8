using DpoSharp.Data;
using DpoSharp.Losses;
using DpoSharp.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace DpoSharp.Tests.Losses;

/// <summary>
/// <see cref="HiddenStateLogProbs"/> (chunked lm_head + logsumexp + gather from hidden states, recomputed in the
/// backward; optionally only at completion positions) against the full-logits path (<see cref="SequenceLogProbs"/>):
/// same sums, counts, mean logits, greedy hits and WPO terms, and the same parameter gradients, for every
/// architecture (tied heads: gpt2, qwen2; untied: llama, mistral; lm_head bias: phi), several chunk sizes, padding.
/// </summary>
[Collection(nameof(DpoSharp.Tests.Training.TorchRngCollection))]
public class HiddenStateLogProbsTests
{
    public HiddenStateLogProbsTests() => DpoSharp.Native.TorchSharpRuntime.EnsureLoadable();

    private sealed record Outcome(double[] Sums, double[] Counts, double[] MeanLogits, double[] Hits, double[] Wpo, Dictionary<string, float[]> Grads);

    /// <summary>One forward/backward of Σ_r c_r · sums_r (distinct c_r, so a row mix-up shows) with all statistics.</summary>
    private static Outcome Run(CausalLMBase model, PreferenceBatch batch)
    {
        using var scope = NewDisposeScope();
        TinyModels.ZeroGradients(model);
        var f = CompletionLogProbs.Forward(model, batch, CompletionStatistics.TokenHits | CompletionStatistics.WpoTerms);
        Assert.Equal(model.LogitsChunkSize == 0, f.Logits is not null);
        var coef = arange(1, f.LogProbs.Sums.shape[0] + 1, ScalarType.Float32) * 0.5;   // (B)
        (f.LogProbs.Sums * coef).sum().backward();
        static double[] D(Tensor t) => t.to(ScalarType.Float64).data<double>().ToArray();
        return new Outcome(D(f.LogProbs.Sums), D(f.LogProbs.TokenCounts), D(f.LogProbs.MeanLogits), D(f.TokenHits!), D(f.WpoTermSums!), TinyModels.Gradients(model));
    }

    /// <summary><see cref="TinyModels.Batch"/> with the first chosen completion replaced by the model's greedy
    /// continuation (every token of it a greedy hit).</summary>
    private static PreferenceBatch GreedyFirstChosen(CausalLMBase model)
    {
        var pairs = TinyModels.Pairs();
        var ids = pairs[0].PromptIds.ToList();
        using (var scope = NewDisposeScope())
        using (no_grad())
        {
            for (int i = 0; i < pairs[0].ChosenIds.Length; i++)
            {
                var logits = model.Forward(tensor(ids.Select(x => (long)x).ToArray()).unsqueeze(0));   // (1, T, V)
                ids.Add((int)logits[0, -1].argmax().item<long>());
            }
        }

        pairs[0] = pairs[0] with { ChosenIds = ids.Skip(pairs[0].PromptIds.Length).ToArray() };
        return new PreferenceCollator(padTokenId: 0).Collate(pairs);
    }

    private static void AssertClose(double[] expected, double[] actual, double tol, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
        {
            Assert.True(Math.Abs(expected[i] - actual[i]) <= tol * Math.Max(1, Math.Abs(expected[i])), $"{what}[{i}]: {actual[i]} vs {expected[i]}");
        }
    }

    [Theory]
    [AllModelTypes]
    public void ChunkedLogProbsAndGradientsEqualTheFullLogitsPath(string type)
    {
        using var model = TinyModels.Create(type);
        using var batch = GreedyFirstChosen(model);
        model.LogitsChunkSize = 0;
        var expected = Run(model, batch);
        Assert.True(expected.Hits[0] == expected.Counts[0] && expected.Counts[0] > 1, $"hits {expected.Hits[0]} of {expected.Counts[0]}");
        foreach (int chunk in new[] { 1, 5, 256 })
        {
            foreach (bool completionOnly in new[] { true, false })
            {
                model.LogitsChunkSize = chunk;
                model.CompletionOnlyLogits = completionOnly;
                var actual = Run(model, batch);
                string what = $"{type} chunk {chunk} completion-only {completionOnly}";
                AssertClose(expected.Sums, actual.Sums, 1e-6, what + " sums");
                Assert.Equal(expected.Counts, actual.Counts);
                AssertClose(expected.MeanLogits, actual.MeanLogits, 1e-6, what + " mean logits");
                Assert.Equal(expected.Hits, actual.Hits);
                AssertClose(expected.Wpo, actual.Wpo, 1e-6, what + " wpo");
                var (diff, scale) = TinyModels.Compare(actual.Grads, expected.Grads);
                Assert.True(diff <= 1e-6 * Math.Max(1, scale), $"{what}: max gradient difference {diff} (largest gradient {scale})");
            }
        }
    }

    [Theory]
    [InlineData("gpt2")]
    [InlineData("phi")]
    public void CompletionOnlyLogitsEqualTheFullLogitsAtThePositionsPredictingCompletionTokens(string type)
    {
        using var model = TinyModels.Create(type);
        using var batch = TinyModels.Batch();
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var full = model.Forward(batch.InputIds, batch.AttentionMask, batch.PositionIds);         // (B, T, V)
        var hidden = model.ForwardHidden(batch.InputIds, batch.AttentionMask, batch.PositionIds); // (B, T, D)
        var (rows, flat, labels, weights) = HiddenStateLogProbs.PredictingPositions(batch.InputIds, batch.CompletionMask, completionOnly: true);
        long b = hidden.shape[0], t = hidden.shape[1];
        var selected = model.LmHead(hidden.reshape(b * t, -1).index_select(0, flat));          // (N, V)
        Assert.Equal(batch.CompletionMask[.., 1..].sum().item<long>(), selected.shape[0]);
        Assert.True(weights.eq(1).all().item<bool>());
        var ids = batch.InputIds.data<long>().ToArray();
        var mask = batch.CompletionMask.data<long>().ToArray();
        var r = rows.data<long>().ToArray();
        var f = flat.data<long>().ToArray();
        var l = labels.data<long>().ToArray();
        for (int i = 0; i < r.Length; i++)
        {
            long pos = f[i] - (r[i] * t);
            Assert.Equal(1, mask[(r[i] * t) + pos + 1]);       // the predicted token is a completion token
            Assert.Equal(ids[(r[i] * t) + pos + 1], l[i]);
            var expected = full[r[i], pos];                      // (V)
            Assert.True(expected.allclose(selected[i], rtol: 1e-5, atol: 1e-5), $"{type} row {r[i]} position {pos}");
        }

        // Every position predicting a completion token is there exactly once.
        Assert.Equal(mask.Where((m, k) => m == 1 && k % t != 0).Count(), r.Length);
    }

    [Fact]
    public void NoGradientsNeededRunsWithoutTheAutogradFunctionAndGivesTheSameValues()
    {
        using var model = TinyModels.Create("qwen2");
        using var batch = TinyModels.Batch();
        using var scope = NewDisposeScope();
        model.LogitsChunkSize = 0;
        Tensor expected, actual;
        using (no_grad())
        {
            expected = CompletionLogProbs.Forward(model, batch).LogProbs.Sums;
            model.LogitsChunkSize = 4;
            actual = CompletionLogProbs.Forward(model, batch).LogProbs.Sums;
        }

        Assert.False(actual.requires_grad);
        Assert.True(actual.allclose(expected, rtol: 1e-6, atol: 1e-6));
    }

    [Fact]
    public void FrozenBodyWithTrainableHeadStillGetsHeadGradients()
    {
        // Only the lm_head trains (phi: weight and bias): the hidden states need no gradient, the head's parameters do.
        using var model = TinyModels.Create("phi");
        using var batch = TinyModels.Batch();
        foreach (var (name, p) in model.named_parameters())
        {
            p.requires_grad = name.StartsWith("lm_head", StringComparison.Ordinal);
        }

        model.LogitsChunkSize = 0;
        var expected = Run(model, batch);
        model.LogitsChunkSize = 3;
        var actual = Run(model, batch);
        Assert.NotNull(model.LmHeadBias);
        Assert.NotNull(model.LmHeadBias!.grad);
        var (diff, scale) = TinyModels.Compare(actual.Grads, expected.Grads);
        Assert.True(scale > 0);
        Assert.True(diff <= 1e-6 * Math.Max(1, scale), $"max gradient difference {diff} (largest {scale})");
    }

    [Fact]
    public void AHeadWithDropoutGetsTheGradientOfTheMasksItDrewInTheForward()
    {
        const int B = 2, T = 7, D = 5, V = 9;
        using var scope = NewDisposeScope();
        random.manual_seed(4);
        var hidden0 = randn(B, T, D);
        var weight = randn(V, D).requires_grad_(true);
        var ids = randint(0, V, [B, T]);
        var mask = tensor(new long[] { 0, 0, 1, 1, 1, 1, 1, 0, 0, 0, 1, 1, 0, 0 }).reshape(B, T);
        Tensor Head(Tensor h) => nn.functional.dropout(nn.functional.linear(h, weight), 0.3, training: true);

        (float[] Sums, float[] Dh, float[] Dw) Run(bool chunked)
        {
            weight.grad?.zero_();
            var hidden = hidden0.clone().requires_grad_(true);
            random.manual_seed(9);
            Tensor sums;
            if (chunked)
            {
                sums = HiddenStateLogProbs.Compute(hidden, Head, [weight], ids, mask, chunkSize: 2).LogProbs.Sums;
            }
            else
            {
                // The same chunks in the same order with plain autograd: the same dropout draws.
                var (rows, flat, labels, _) = HiddenStateLogProbs.PredictingPositions(ids, mask, completionOnly: true);
                var selected = hidden.reshape(B * T, D).index_select(0, flat);                 // (N, D)
                var parts = new List<Tensor>();
                for (long s = 0; s < selected.shape[0]; s += 2)
                {
                    long len = Math.Min(2, selected.shape[0] - s);
                    var z = Head(selected.narrow(0, s, len));                                  // (c, V)
                    parts.Add(z.gather(-1, labels.narrow(0, s, len).unsqueeze(-1)).squeeze(-1) - z.logsumexp(-1));
                }

                sums = zeros(B).index_add(0, rows, cat(parts, 0), 1.0);
            }

            (sums * tensor(new float[] { 1, -2 })).sum().backward();
            return (sums.detach().data<float>().ToArray(), hidden.grad!.data<float>().ToArray(), weight.grad!.data<float>().ToArray());
        }

        var plain = Run(chunked: false);
        var chunked = Run(chunked: true);
        Assert.Equal(plain.Sums, chunked.Sums);
        AssertClose(plain.Dh.Select(x => (double)x).ToArray(), chunked.Dh.Select(x => (double)x).ToArray(), 1e-6, "d hidden");
        AssertClose(plain.Dw.Select(x => (double)x).ToArray(), chunked.Dw.Select(x => (double)x).ToArray(), 1e-6, "d weight");
    }
}
