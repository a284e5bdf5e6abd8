using static TorchSharp.torch;

namespace DpoSharp.Losses;

/// <summary>
/// <c>sft</c>: the negative log-likelihood of the chosen completions, averaged over all their tokens in the batch
/// (TRL's cross-entropy over chosen completion tokens): −Σ log π(y_w) / Σ n_w, the same value for every pair.
/// Used as MPO's generation term or, via <c>rpo_alpha</c>, RPO's. Rewards are the usual β·(log π − log π_ref).
/// Batch-dependent.
/// </summary>
public sealed class SftLoss(LossOptions options) : PreferenceLossBase(options)
{
    /// <inheritdoc/>
    public override string Name => LossTypes.Sft;

    /// <summary>
    /// The scalar batch NLL of the chosen completions (keeps the graph): −Σ chosen log-prob sums / Σ chosen tokens.
    /// </summary>
    public static Tensor ChosenNll(PreferenceLossInput input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var sums = input.PerTokenAveraged
            ? input.PolicyChosenLogps * input.ChosenTokenCounts
            : input.PolicyChosenLogps;
        return -sums.sum() / input.ChosenTokenCounts.sum().clamp_min(1);
    }

    /// <inheritdoc/>
    public override PreferenceLossOutput Compute(PreferenceLossInput input)
    {
        var nll = ChosenNll(input);
        var baseOut = base.Compute(input);
        var losses = nll.expand(input.PolicyChosenLogps.shape[0]);
        return new PreferenceLossOutput(losses, baseOut.ChosenRewards, baseOut.RejectedRewards) { NllLoss = nll.detach() };
    }

    /// <inheritdoc/>
    protected override Tensor ComputeLosses(PreferenceTerms terms, double beta) => zeros_like(terms.PolicyChosen);
}
