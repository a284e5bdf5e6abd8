using static TorchSharp.torch;

namespace DpoSharp.Losses;

/// <summary>
/// <c>sigmoid_norm</c> (TRL ≥ 1.4): the DPO loss on length-normalised scores, −log σ(β·(s_w/n_w − s_l/n_l)), where s
/// are the f-divergence scores of the sequence log-ratios and n the completion token counts. Rewards stay
/// β·(log π − log π_ref) of the sums.
/// </summary>
public sealed class SigmoidNormLoss(LossOptions options) : PreferenceLossBase(options)
{
    /// <inheritdoc/>
    public override string Name => LossTypes.SigmoidNorm;

    /// <inheritdoc/>
    protected override Tensor ComputeLosses(PreferenceTerms terms, double beta)
    {
        var sw = terms.Divergence.Score(terms.ChosenLogRatios);
        var sl = terms.Divergence.Score(terms.RejectedLogRatios);
        if (!terms.PerTokenAveraged)
        {
            sw /= terms.ChosenTokenCounts.clamp_min(1);
            sl /= terms.RejectedTokenCounts.clamp_min(1);
        }

        return -nn.functional.logsigmoid((sw - sl) * beta);
    }
}
