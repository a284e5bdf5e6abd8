using DpoSharp.Data;
using DpoSharp.Losses;
using DpoSharp.Models;
using DpoSharp.Modules;
using TorchSharp;
using static TorchSharp.torch;

namespace DpoSharp.Tests.Losses;

/// <summary>
/// Prefix sharing (<see cref="PreferenceCollator.PrefixSharing"/>: one row <c>[prompt | chosen | rejected]</c> per
/// pair) and padding-free batches (<see cref="PreferenceCollator.PaddingFree"/>: sequences packed into rows) against
/// the ordinary layout (one right-padded row per completion): same per-completion log-prob sums, token counts, mean
/// logits, greedy hits, WPO terms and parameter gradients, for every architecture (mistral's sliding window of 8 is
/// shorter than the longest sequence), on the chunked and the full-logits paths and with gradient checkpointing (the
/// collator's rows attend with the full mask; attention per sequence, for rows packing many short sequences, is
/// checked against the sequences run alone); and the layouts themselves by hand.
/// </summary>
[Collection(nameof(DpoSharp.Tests.Training.TorchRngCollection))]
public class PrefixSharingTests
{
    public PrefixSharingTests() => DpoSharp.Native.TorchSharpRuntime.EnsureLoadable();

    private sealed record Outcome(double[] Sums, double[] Counts, double[] MeanLogits, double[] Hits, double[] Wpo, double Loss, Dictionary<string, float[]> Grads);

    /// <summary>One forward/backward of a DPO-like loss Σ_i logsigmoid(c_i·(chosen_i − rejected_i)) (distinct c_i, so a
    /// pair mix-up shows) with every statistic.</summary>
    private static Outcome Run(CausalLMBase model, PreferenceBatch batch)
    {
        using var scope = NewDisposeScope();
        TinyModels.ZeroGradients(model);
        var f = CompletionLogProbs.Forward(model, batch, CompletionStatistics.TokenHits | CompletionStatistics.WpoTerms);
        int p = batch.PairCount;
        var sums = f.LogProbs.Sums;                                                  // (2P)
        var coef = arange(1, p + 1, ScalarType.Float32) * 0.3;                       // (P)
        var loss = -nn.functional.logsigmoid(coef * (sums[..p] - sums[p..])).sum();
        loss.backward();
        static double[] D(Tensor t) => t.to(ScalarType.Float64).data<double>().ToArray();
        return new Outcome(D(sums), D(f.LogProbs.TokenCounts), D(f.LogProbs.MeanLogits), D(f.TokenHits!), D(f.WpoTermSums!), loss.item<float>(), TinyModels.Gradients(model));
    }

    private static void AssertClose(double[] expected, double[] actual, double tol, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
        {
            Assert.True(Math.Abs(expected[i] - actual[i]) <= tol * Math.Max(1, Math.Abs(expected[i])), $"{what}[{i}]: {actual[i]} vs {expected[i]}");
        }
    }

    private static void AssertSame(Outcome expected, Outcome actual, string what)
    {
        AssertClose(expected.Sums, actual.Sums, 2e-5, what + " sums");
        Assert.Equal(expected.Counts, actual.Counts);
        AssertClose(expected.MeanLogits, actual.MeanLogits, 2e-5, what + " mean logits");
        Assert.Equal(expected.Hits, actual.Hits);
        AssertClose(expected.Wpo, actual.Wpo, 2e-5, what + " wpo");
        AssertClose([expected.Loss], [actual.Loss], 2e-5, what + " loss");
        var (diff, scale) = TinyModels.Compare(actual.Grads, expected.Grads);
        Assert.True(diff <= 2e-5 * Math.Max(1, scale), $"{what}: max gradient difference {diff} (largest gradient {scale})");
    }

    [Theory]
    [AllModelTypes]
    public void PrefixSharedAndPaddingFreeBatchesGiveTheLogProbsLossAndGradientsOfOneRowPerCompletion(string type)
    {
        using var model = TinyModels.Create(type);
        var pairs = TinyModels.Pairs(count: 4);
        using var plain = new PreferenceCollator(padTokenId: 0).Collate(pairs);
        Assert.Null(plain.SegmentIds);
        foreach (var (chunk, checkpointing) in new[] { (256, false), (0, false), (256, true) })
        {
            model.LogitsChunkSize = chunk;
            model.GradientCheckpointing = false;
            var expected = Run(model, plain);
            model.GradientCheckpointing = checkpointing;     // recomputed layers see the same mask
            foreach (var (sharing, free) in new[] { (true, false), (false, true), (true, true) })
            {
                using var batch = new PreferenceCollator(padTokenId: 0) { PrefixSharing = sharing, PaddingFree = free }.Collate(pairs);
                Assert.Equal(pairs.Count, batch.PairCount);
                AssertSame(expected, Run(model, batch), $"{type} chunk {chunk} checkpointing {checkpointing} prefix sharing {sharing} padding-free {free}");
            }
        }
    }

    [Theory]
    [InlineData("llama")]
    [InlineData("gpt2")]
    public void LengthDesensitizedSumsAndGradientsAreTheSameInEveryLayout(string type)
    {
        // LD-DPO weights count tokens per completion: in a shared or packed row the two completions of a pair (and
        // other pairs' sequences) sit in one row, so the weights must restart at each sequence.
        using var model = TinyModels.Create(type);
        var pairs = TinyModels.Pairs(count: 4);
        Assert.Contains(pairs, q => q.ChosenIds.Length != q.RejectedIds.Length);   // public length < some completion
        (double[] Sums, Dictionary<string, float[]> Grads) Run(PreferenceBatch batch)
        {
            using var scope = NewDisposeScope();
            TinyModels.ZeroGradients(model);
            var w = LengthDesensitization.TokenWeights(batch.CompletionMask, batch.PairCount, 0.3, batch.SegmentIds);
            var sums = CompletionLogProbs.Forward(model, batch, tokenWeights: w).LogProbs.Sums;   // (2P)
            (sums * arange(1, sums.shape[0] + 1, ScalarType.Float32)).sum().backward();
            return (sums.to(ScalarType.Float64).data<double>().ToArray(), TinyModels.Gradients(model));
        }

        using var plain = new PreferenceCollator(padTokenId: 0).Collate(pairs);
        var expected = Run(plain);
        using var unweighted = new PreferenceCollator(padTokenId: 0).Collate(pairs);
        var plainSums = CompletionLogProbs.Forward(model, unweighted).LogProbs.Sums.to(ScalarType.Float64).data<double>().ToArray();
        Assert.Contains(Enumerable.Range(0, plainSums.Length), i => Math.Abs(plainSums[i] - expected.Sums[i]) > 1e-3);   // the weights bite
        foreach (var (sharing, free) in new[] { (true, false), (false, true), (true, true) })
        {
            using var batch = new PreferenceCollator(padTokenId: 0) { PrefixSharing = sharing, PaddingFree = free }.Collate(pairs);
            var actual = Run(batch);
            AssertClose(expected.Sums, actual.Sums, 2e-5, $"{type} prefix sharing {sharing} padding-free {free} sums");
            var (diff, scale) = TinyModels.Compare(actual.Grads, expected.Grads);
            Assert.True(diff <= 2e-5 * Math.Max(1, scale), $"{type} prefix sharing {sharing} padding-free {free}: max gradient difference {diff}");
        }
    }

    [Fact]
    public void LengthDesensitizationWeightsOfASharedRowRestartAtEachCompletionByHand()
    {
        // Row [11 12 13 | 21 22 23 | 13 | 31 32]: chosen 3 tokens, rejected 2 → ℓ = 2; the chosen's third token gets α.
        var pair = new TokenizedPair([11, 12, 13], [21, 22, 23], [31, 32]);
        using var b = new PreferenceCollator(padTokenId: 0) { PrefixSharing = true }.Collate([pair]);
        var w = LengthDesensitization.TokenWeights(b.CompletionMask, 1, 0.5, b.SegmentIds).data<float>().ToArray();
        Assert.Equal([0f, 0, 0, 1, 1, 0.5f, 0, 1, 1], w);
    }

    [Fact]
    public void TheCollatorsRowsAttendWithTheirMaskAndRowsPackingManyShortSequencesPerSequence()
    {
        // Per sequence when 2·S·Tv² ≤ B·T². The collator's rows never qualify: a [prompt | chosen | rejected] row is
        // mostly its two sequences, and packed rows are as long as the longest sequence (Tv = T, S ≥ B). Rows packing
        // many short sequences do; a sliding window shorter than the sequences never.
        using var llama = TinyModels.Create("llama");
        using var mistral = TinyModels.Create("mistral");
        var pairs = TinyModels.Pairs(count: 6);
        foreach (var (sharing, free) in new[] { (true, false), (false, true), (true, true) })
        {
            using var batch = new PreferenceCollator(padTokenId: 0) { PrefixSharing = sharing, PaddingFree = free }.Collate(pairs);
            Assert.False(llama.AttendsPerSequence(batch.SequenceGather, batch.InputIds), $"prefix sharing {sharing} padding-free {free}");
        }

        Assert.False(llama.AttendsPerSequence(null, zeros(1, 24, ScalarType.Int64)));
        Assert.True(llama.AttendsPerSequence(zeros(6, 4, ScalarType.Int64), zeros(1, 24, ScalarType.Int64)));      // 192 ≤ 576
        Assert.False(llama.AttendsPerSequence(zeros(2, 5, ScalarType.Int64), zeros(1, 7, ScalarType.Int64)));      // 100 > 49
        Assert.False(mistral.AttendsPerSequence(zeros(6, 9, ScalarType.Int64), zeros(1, 54, ScalarType.Int64)));   // window 8 < 9
    }

    [Theory]
    [InlineData("llama")]
    [InlineData("gpt2")]
    [InlineData("phi")]
    public void ARowPackingManyShortSequencesAttendsPerSequenceAndGivesTheHiddenStatesOfEachSequenceAlone(string type)
    {
        // One row of six 4-token sequences with positions restarting: attention per sequence (gathered rows, the causal
        // path, scattered back) must equal running the six sequences as six rows.
        using var model = TinyModels.Create(type);
        manual_seed(7);
        var seqs = randint(0, TinyCheckpoints.DefaultVocabSize, [6, 4]);                         // (S, Tv)
        var row = seqs.reshape(1, 24);                                                             // (1, T)
        var positions = arange(4, ScalarType.Int64).repeat(6).unsqueeze(0);                        // (1, T)
        var gather = arange(24, ScalarType.Int64).view(6, 4);                                      // (S, Tv)
        var scatter = arange(24, ScalarType.Int64);                                                // (T)
        Assert.True(model.AttendsPerSequence(gather, row));
        using var noGrad = no_grad();
        var packed = model.ForwardHidden(row, ones(1, 24, ScalarType.Int64), positions, gather, scatter);   // (1, T, D)
        var alone = model.ForwardHidden(seqs);                                                      // (S, Tv, D)
        double diff = (packed.view(6, 4, -1) - alone).abs().max().item<float>();
        Assert.True(diff <= 2e-5, $"{type}: max |packed − alone| = {diff}");
    }

    [Fact]
    public void APrefixSharedRowIsPromptChosenLastPromptTokenRejectedWithPositionsAndSegmentsByHand()
    {
        var pair = new TokenizedPair([11, 12, 13], [21, 22], [31]);
        using var b = new PreferenceCollator(padTokenId: 0) { PrefixSharing = true }.Collate([pair]);
        static long[] L(Tensor t) => t.data<long>().ToArray();
        Assert.Equal([11L, 12, 13, 21, 22, 13, 31], L(b.InputIds));
        Assert.Equal([0L, 1, 2, 3, 4, 2, 3], L(b.PositionIds));
        Assert.Equal([0L, 0, 0, 1, 1, 0, 1], L(b.CompletionMask));
        Assert.Equal([2L, 2, 0, 0, 0, 1, 1], L(b.SegmentIds!));          // shared prompt 2P+i, chosen i, rejected P+i
        Assert.Equal([2L, 2, 2, 2, 2, 2, 2], L(b.ParentSegmentIds!));
        Assert.Equal(2, b.SequenceCount);
        Assert.Equal(9, b.TokenCount);                                   // num_tokens as with one row per completion

        // Attention rows per sequence (causal fast path): chosen = tokens 0-4, rejected = 0, 1, the copy 5 and 6,
        // padded with its first token; each token's output comes from the sequence that owns it.
        Assert.Equal([2L, 5], b.SequenceGather!.shape);
        Assert.Equal([0L, 1, 2, 3, 4, /**/ 0, 1, 5, 6, 0], L(b.SequenceGather!));
        Assert.Equal([0L, 1, 2, 3, 4, 7, 8], L(b.SequenceScatter!));

        // Who sees whom: the chosen branch sees the prompt; the rejected branch sees the prompt's first tokens, the
        // copy of its last token and itself, never the chosen branch nor the original last prompt token.
        var mask = AttentionContext.SegmentMask(b.SegmentIds!, b.ParentSegmentIds!);   // (1, 1, 7, 7)
        int[] Visible(int q) => [.. Enumerable.Range(0, 7).Where(k => mask[0, 0, q, k].item<bool>())];
        Assert.Equal([0, 1, 2, 3, 4], Visible(4));
        Assert.Equal([0, 1, 5], Visible(5));
        Assert.Equal([0, 1, 5, 6], Visible(6));
    }

    [Fact]
    public void PaddingFreeBatchesPackSequencesFirstFitByDecreasingLengthWithPositionResets()
    {
        // Sequences of 6, 3 (pair 0) and 2, 4 (pair 1): rows of 6 hold [6], [4 | 2], [3].
        TokenizedPair[] pairs = [new([1, 2], [3, 4, 5, 6], [7]), new([8], [9], [10, 11, 12])];
        using var b = new PreferenceCollator(padTokenId: 0) { PaddingFree = true }.Collate(pairs);
        static long[] L(Tensor t) => t.data<long>().ToArray();
        Assert.Equal([3L, 6], b.InputIds.shape);
        Assert.Equal([1L, 2, 3, 4, 5, 6, /**/ 8, 10, 11, 12, 8, 9, /**/ 1, 2, 7, 0, 0, 0], L(b.InputIds));
        Assert.Equal([0L, 1, 2, 3, 4, 5, /**/ 0, 1, 2, 3, 0, 1, /**/ 0, 1, 2, 0, 0, 0], L(b.PositionIds));
        Assert.Equal([0L, 0, 0, 0, 0, 0, /**/ 3, 3, 3, 3, 1, 1, /**/ 2, 2, 2, -1, -1, -1], L(b.SegmentIds!));
        Assert.Equal([1L, 1, 1, 1, 1, 1, /**/ 1, 1, 1, 1, 1, 1, /**/ 1, 1, 1, 0, 0, 0], L(b.AttentionMask));
        Assert.Equal(15, b.TokenCount);
    }
}
