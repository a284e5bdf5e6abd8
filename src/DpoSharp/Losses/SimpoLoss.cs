using static TorchSharp.torch;

namespace DpoSharp.Losses;

/// <summary>
/// <c>simpo</c>: simple preference optimisation (Meng et al., 2024; TRL's <c>CPOTrainer</c> with loss_type simpo),
/// reference-free: with c, r the mean per-token log-probs, −log σ(β·(c − r) − γ) (γ = <c>simpo_gamma</c>; with label
/// smoothing ε the cDPO mixture), plus <c>cpo_alpha</c> × the chosen NLL per token (TRL's default 1; the SimPO paper
/// uses 0). Rewards β·c, β·r.
/// </summary>
public sealed class SimpoLoss(LossOptions options) : ReferenceFreeLossBase(options)
{
    /// <inheritdoc/>
    public override string Name => LossTypes.Simpo;

    /// <inheritdoc/>
    public override PreferenceLossOutput Compute(PreferenceLossInput input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var (c, r) = MeanLogps(input);
        var losses = SigmoidLoss.SmoothedLogistic(((c - r) * input.Beta) - Options.SimpoGamma, Options.LabelSmoothing);
        Tensor? nll = null;
        if (Options.CpoAlpha != 0)
        {
            var perPair = ChosenNllPerPair(input);
            losses = losses + (perPair * Options.CpoAlpha);
            nll = perPair.mean();
        }

        return Output(losses, c, r, input.Beta, nll);
    }
}
