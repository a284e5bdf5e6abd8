using DpoSharp.Data;
using DpoSharp.Losses;
using DpoSharp.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace DpoSharp.Scoring;

/// <summary>Completion log-probs of one preference pair.</summary>
/// <param name="ChosenLogps">Sum over chosen-completion tokens of log p(token | everything before it).</param>
/// <param name="RejectedLogps">The same for the rejected completion.</param>
/// <param name="ChosenTokens">Number of chosen-completion tokens.</param>
/// <param name="RejectedTokens">Number of rejected-completion tokens.</param>
public sealed record PairScore(double ChosenLogps, double RejectedLogps, int ChosenTokens, int RejectedTokens);

/// <summary>
/// Scores preference pairs with a model: for each pair, the summed log-probs of the chosen and rejected
/// completions given the prompt (the first completion token is predicted from the last prompt token). Pairs are
/// batched (chosen rows then rejected rows, right-padded, one forward per batch) in length order to limit padding;
/// results come back in input order and do not depend on the batching beyond fp32 noise.
/// </summary>
public static class PreferenceScorer
{
    /// <summary>
    /// Per-row completion log-prob sums (2P) of <paramref name="batch"/>: one forward, then
    /// <see cref="SequenceLogProbs.Compute"/> (<see cref="CompletionLogProbs.Forward"/>). Gradients flow unless the
    /// caller disables them.
    /// </summary>
    public static SequenceLogProbsResult ScoreBatch(ICausalLM model, PreferenceBatch batch)
    {
        using var scope = NewDisposeScope();
        var r = CompletionLogProbs.Forward(model, batch).LogProbs;
        return new SequenceLogProbsResult(r.Sums.MoveToOuterDisposeScope(), r.TokenCounts.MoveToOuterDisposeScope(), r.MeanLogits.MoveToOuterDisposeScope());
    }

    /// <summary>
    /// Scores every pair (no gradients) in batches of <paramref name="batchSize"/> pairs on the model's device.
    /// <paramref name="progress"/> receives the number of pairs done.
    /// </summary>
    /// <exception cref="DpoSharpException">A pair has an empty prompt or completion, or a token id outside the vocabulary.</exception>
    public static IReadOnlyList<PairScore> Score(ICausalLM model, IReadOnlyList<TokenizedPair> pairs, int batchSize = 4, int? padTokenId = null, IProgress<int>? progress = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        int vocab = model.Config.VocabSize;
        foreach (var pair in pairs)
        {
            ThrowIfEmpty(pair);
        }

        PairChecks.ThrowIfOutsideVocabulary(pairs, vocab, i => $"row {pairs[i].SourceIndex + 1}");

        int pad = padTokenId ?? model.Config.PadTokenId ?? (model.Config.EosTokenIds.Count > 0 ? model.Config.EosTokenIds[0] : 0);
        if (pad < 0 || pad >= vocab)
        {
            pad = 0;
        }

        var order = Enumerable.Range(0, pairs.Count)
            .OrderByDescending(i => PreferenceCollator.PairLength(pairs[i]))
            .ToArray();
        var results = new PairScore[pairs.Count];
        var device = model.Device;
        var collator = new PreferenceCollator(pad) { PrefixSharing = model is CausalLMBase }; // each prompt runs once
        using var _ = no_grad();
        for (int start = 0; start < order.Length; start += batchSize)
        {
            var idx = order.Skip(start).Take(batchSize).ToArray();
            using var scope = NewDisposeScope();
            using var batch = collator.Collate(pairs, idx, device);
            var r = ScoreBatch(model, batch);
            var sums = r.Sums.to(ScalarType.Float64).cpu().data<double>().ToArray();
            int p = idx.Length;
            for (int k = 0; k < p; k++)
            {
                var pair = pairs[idx[k]];
                results[idx[k]] = new PairScore(sums[k], sums[p + k], pair.ChosenIds.Length, pair.RejectedIds.Length);
            }

            progress?.Report(Math.Min(start + batchSize, order.Length));
        }

        return results;
    }

    private static void ThrowIfEmpty(TokenizedPair pair)
    {
        string where = $"row {pair.SourceIndex + 1}";
        if (pair.PromptIds.Length == 0)
        {
            throw new DpoSharpException($"{where}: the prompt is empty; the first completion token needs at least one prompt token to be predicted from (e.g. BOS).");
        }

        if (pair.ChosenIds.Length == 0 || pair.RejectedIds.Length == 0)
        {
            throw new DpoSharpException($"{where}: the {(pair.ChosenIds.Length == 0 ? "chosen" : "rejected")} completion is empty.");
        }
    }
}
