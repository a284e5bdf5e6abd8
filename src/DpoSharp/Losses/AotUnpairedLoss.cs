using static TorchSharp.torch;

namespace DpoSharp.Losses;

/// <summary>
/// <c>aot_unpaired</c>: alignment via optimal transport for unpaired data (Melnyk et al., 2024): chosen and
/// rejected log-ratios are sorted separately and δ = sorted(r_w) − sorted(r_l) enters the label-smoothed logistic
/// loss. Batch-dependent.
/// </summary>
public sealed class AotUnpairedLoss(LossOptions options) : PreferenceLossBase(options)
{
    /// <inheritdoc/>
    public override string Name => LossTypes.AotUnpaired;

    /// <inheritdoc/>
    protected override Tensor ComputeLosses(PreferenceTerms terms, double beta)
    {
        var (chosenSorted, _) = terms.ChosenLogRatios.sort(0);
        var (rejectedSorted, _) = terms.RejectedLogRatios.sort(0);
        return SigmoidLoss.SmoothedLogistic((chosenSorted - rejectedSorted) * beta, Options.LabelSmoothing);
    }
}
