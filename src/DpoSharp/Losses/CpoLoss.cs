using static TorchSharp.torch;

namespace DpoSharp.Losses;

/// <summary>
/// <c>cpo</c>: contrastive preference optimisation (Xu et al., 2024; TRL's <c>CPOTrainer</c> with loss_type sigmoid),
/// reference-free: with c, r the summed log-probs, −log σ(β·(c − r)) (with label smoothing ε the cDPO mixture) plus
/// <c>cpo_alpha</c> × the chosen NLL per token. Rewards β·c, β·r.
/// </summary>
public sealed class CpoLoss(LossOptions options) : ReferenceFreeLossBase(options)
{
    /// <inheritdoc/>
    public override string Name => LossTypes.Cpo;

    /// <inheritdoc/>
    public override PreferenceLossOutput Compute(PreferenceLossInput input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var (c, r) = SumLogps(input);
        var losses = SigmoidLoss.SmoothedLogistic((c - r) * input.Beta, Options.LabelSmoothing);
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
