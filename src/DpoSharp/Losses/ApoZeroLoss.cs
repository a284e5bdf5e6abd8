using static TorchSharp.torch;

namespace DpoSharp.Losses;

/// <summary>
/// <c>apo_zero</c>: anchored preference optimisation, zero variant (D'Oosterlinck et al., 2024, eq. 7): raise the
/// chosen likelihood and lower the rejected one, (1 − σ(β·r_w)) + σ(β·r_l).
/// </summary>
public sealed class ApoZeroLoss(LossOptions options) : PreferenceLossBase(options)
{
    /// <inheritdoc/>
    public override string Name => LossTypes.ApoZero;

    /// <inheritdoc/>
    protected override Tensor ComputeLosses(PreferenceTerms terms, double beta)
        => (1 - (terms.ChosenLogRatios * beta).sigmoid()) + (terms.RejectedLogRatios * beta).sigmoid();
}
