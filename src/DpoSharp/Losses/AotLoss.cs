using static TorchSharp.torch;

namespace DpoSharp.Losses;

/// <summary>
/// <c>aot</c>: alignment via optimal transport for paired data (Melnyk et al., 2024): the batch's policy log-ratio
/// differences (log π_w − log π_l) and reference differences are each sorted, and δ = sorted − sorted_ref enters the
/// label-smoothed logistic loss. Batch-dependent: a pair's loss depends on the other pairs.
/// </summary>
public sealed class AotLoss(LossOptions options) : PreferenceLossBase(options)
{
    /// <inheritdoc/>
    public override string Name => LossTypes.Aot;

    /// <inheritdoc/>
    protected override Tensor ComputeLosses(PreferenceTerms terms, double beta)
    {
        var (policySorted, _) = (terms.PolicyChosen - terms.PolicyRejected).sort(0);
        var (refSorted, _) = (terms.ReferenceChosen - terms.ReferenceRejected).sort(0);
        return SigmoidLoss.SmoothedLogistic((policySorted - refSorted) * beta, Options.LabelSmoothing);
    }
}
