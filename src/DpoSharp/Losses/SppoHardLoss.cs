using static TorchSharp.torch;

namespace DpoSharp.Losses;

/// <summary>
/// <c>sppo_hard</c>: SPPO with hard labels (Wu et al., 2024): (r_w − 1/(2β))² + (r_l + 1/(2β))² where r are the
/// policy/reference log-ratios (the f-divergence does not apply).
/// </summary>
public sealed class SppoHardLoss(LossOptions options) : PreferenceLossBase(options)
{
    /// <inheritdoc/>
    public override string Name => LossTypes.SppoHard;

    /// <inheritdoc/>
    protected override Tensor ComputeLosses(PreferenceTerms terms, double beta)
        => (terms.ChosenLogRatios - (0.5 / beta)).square() + (terms.RejectedLogRatios + (0.5 / beta)).square();
}
