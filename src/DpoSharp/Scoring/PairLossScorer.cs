using DpoSharp.Losses;
using static TorchSharp.torch;

namespace DpoSharp.Scoring;

/// <summary>One pair's reference log-probs, implicit rewards and loss, the pair scored alone.</summary>
/// <param name="RefChosenLogps">Reference log-prob sum of the chosen completion.</param>
/// <param name="RefRejectedLogps">Reference log-prob sum of the rejected completion.</param>
/// <param name="ChosenReward">The loss's chosen reward, e.g. β·(log π − log π_ref) for sigmoid.</param>
/// <param name="RejectedReward">The loss's rejected reward.</param>
/// <param name="Loss">The pair's loss.</param>
public sealed record PairLossScore(double RefChosenLogps, double RefRejectedLogps, double ChosenReward, double RejectedReward, double Loss);

/// <summary>
/// Per-pair losses for <c>dposharp score --ref-model</c>: each pair's loss as if it were a batch of one, which is
/// only meaningful for losses that do not look at the rest of the batch.
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
    /// Computes every pair's loss and rewards from policy and reference scores (same order, same pairs). Losses are
    /// elementwise in the pairs, so one vectorised call gives each pair's value scored alone.
    /// </summary>
    public static IReadOnlyList<PairLossScore> Compute(IReadOnlyList<PairScore> policy, IReadOnlyList<PairScore> reference, IPreferenceLoss loss, double beta)
    {
        ArgumentNullException.ThrowIfNull(policy);
        ArgumentNullException.ThrowIfNull(reference);
        ArgumentNullException.ThrowIfNull(loss);
        if (policy.Count != reference.Count)
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
        var input = new PreferenceLossInput(
            T(s => s.ChosenLogps, policy),
            T(s => s.RejectedLogps, policy),
            T(s => s.ChosenLogps, reference),
            T(s => s.RejectedLogps, reference),
            T(s => s.ChosenTokens, policy),
            T(s => s.RejectedTokens, policy),
            beta);
        var o = loss.Compute(input);
        var losses = o.Losses.to(ScalarType.Float64).data<double>().ToArray();
        var chosen = o.ChosenRewards.to(ScalarType.Float64).data<double>().ToArray();
        var rejected = o.RejectedRewards.to(ScalarType.Float64).data<double>().ToArray();
        return [.. Enumerable.Range(0, policy.Count).Select(i => new PairLossScore(reference[i].ChosenLogps, reference[i].RejectedLogps, chosen[i], rejected[i], losses[i]))];
    }
}
