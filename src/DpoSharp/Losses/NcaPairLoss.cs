using static TorchSharp.torch;

namespace DpoSharp.Losses;

/// <summary>
/// <c>nca_pair</c>: pairwise NCA (Chen et al., 2024): −log σ(β·r_w) − ½·log σ(−β·r_w) − ½·log σ(−β·r_l).
/// </summary>
public sealed class NcaPairLoss(LossOptions options) : PreferenceLossBase(options)
{
    /// <inheritdoc/>
    public override string Name => LossTypes.NcaPair;

    /// <inheritdoc/>
    protected override Tensor ComputeLosses(PreferenceTerms terms, double beta)
    {
        var cw = terms.ChosenLogRatios * beta;
        var rl = terms.RejectedLogRatios * beta;
        return -nn.functional.logsigmoid(cw) - (nn.functional.logsigmoid(-cw) * 0.5) - (nn.functional.logsigmoid(-rl) * 0.5);
    }
}
