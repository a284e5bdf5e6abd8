using static TorchSharp.torch;

namespace DpoSharp.Losses;

/// <summary>
/// <c>apo_down</c>: anchored preference optimisation, down variant (D'Oosterlinck et al., 2024, eq. 8): lower both
/// likelihoods, the rejected one more, σ(β·r_w) + (1 − σ(β·(r_w − r_l))).
/// </summary>
public sealed class ApoDownLoss(LossOptions options) : PreferenceLossBase(options)
{
    /// <inheritdoc/>
    public override string Name => LossTypes.ApoDown;

    /// <inheritdoc/>
    protected override Tensor ComputeLosses(PreferenceTerms terms, double beta)
        => (terms.ChosenLogRatios * beta).sigmoid()
            + (1 - ((terms.ChosenLogRatios - terms.RejectedLogRatios) * beta).sigmoid());
}
