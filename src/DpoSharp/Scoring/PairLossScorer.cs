using DpoSharp.Losses;
using static TorchSharp.torch;

namespace DpoSharp.Scoring;

/// <summary>One pair's reference log-probs, implicit rewards and loss, the pair scored alone.</summary>
/// <param name="RefChosenLogps">Reference log-prob sum of the chosen completion; null for a reference-free loss.</param>
/// <param name="RefRejectedLogps">Reference log-prob sum of the rejected completion; null for a reference-free loss.</param>
/// <param name="ChosenReward">The loss's chosen reward, e.g. β·(log π − log π_ref) for sigmoid.</param>
/// <param name="RejectedReward">The loss's rejected reward.</param>
/// <param name="Loss">The pair's loss.</param>
public sealed record PairLossScore(double? RefChosenLogps, double? RefRejectedLogps, double ChosenReward, double RejectedReward, double Loss);

/// <summary>
/// Per-pair losses for <c>dposharp score --ref-model</c> (or <c>--loss-type orpo|simpo|cpo</c>, which need no
/// reference): each pair's loss as if it were a batch of one, which is only meaningful for losses that do not look at
/// the rest of the batch. For the reference-free losses a pair alone is its contribution to the batch loss: their
/// (P) losses are per-pair shares whose mean is TRL's batch loss, and a pair's share of the batch NLL alone is its
/// own per-token NLL.
/// </summary>
public static class PairLossScorer
{
    /// <summary>Losses whose value for a pair depends on the other pairs of the batch (sorting, running batch means).</summary>
    public static IReadOnlyList<string> BatchDependentLosses { get; } = ["aot", "aot_unpaired", "bco_pair"];

    /// <summary>Throws <see cref="DpoSharpException"/> when one of <paramref name="lossTypes"/> cannot score a pair alone.</summary>
    public static void RequireBatchIndependent(IReadOnlyList<string> lossTypes)
    {
        var bad = lossTypes.Where(BatchDependentLosses.Contains).ToList();
        if (bad.Count > 0)
        {
            throw new DpoSharpException(
                $"--loss-type {string.Join(",", bad)}: this loss depends on the other pairs of a batch, so a per-row loss is not defined; " +
                $"score with a batch-independent loss ({string.Join(", ", PreferenceLosses.Names.Where(n => !BatchDependentLosses.Contains(n)))}).");
        }
    }

    /// <summary>
    /// Computes every pair's loss and rewards from policy and reference scores (same order, same pairs; no reference
    /// scores for a reference-free loss). Each pair is computed as a batch of one.
    /// </summary>
    public static IReadOnlyList<PairLossScore> Compute(IReadOnlyList<PairScore> policy, IReadOnlyList<PairScore>? reference, IPreferenceLoss loss, double beta)
    {
        ArgumentNullException.ThrowIfNull(policy);
        ArgumentNullException.ThrowIfNull(loss);
        if (reference is not null && policy.Count != reference.Count)
        {
            throw new ArgumentException($"{policy.Count} policy scores but {reference.Count} reference scores");
        }

        if (policy.Count == 0)
        {
            return [];
        }

        using var scope = NewDisposeScope();
        using var _ = no_grad();
        Tensor T(Func<PairScore, double> f, IReadOnlyList<PairScore> s) => tensor(s.Select(x => (float)f(x)).ToArray());
        var result = new PairLossScore[policy.Count];
        for (int i = 0; i < policy.Count; i++)
        {
            // A batch of one: batch-level terms (the NLL of orpo/simpo/cpo/sft) are the pair's own.
            IReadOnlyList<PairScore> one = [policy[i]];
            IReadOnlyList<PairScore>? oneRef = reference is null ? null : [reference[i]];
            var input = new PreferenceLossInput(
                T(s => s.ChosenLogps, one),
                T(s => s.RejectedLogps, one),
                oneRef is null ? null : T(s => s.ChosenLogps, oneRef),
                oneRef is null ? null : T(s => s.RejectedLogps, oneRef),
                T(s => s.ChosenTokens, one),
                T(s => s.RejectedTokens, one),
                beta);
            var o = loss.Compute(input);
            result[i] = new PairLossScore(reference?[i].ChosenLogps, reference?[i].RejectedLogps,
                o.ChosenRewards.to(ScalarType.Float64).item<double>(), o.RejectedRewards.to(ScalarType.Float64).item<double>(), o.Losses.to(ScalarType.Float64).item<double>());
        }

        return result;
    }
}
