using static TorchSharp.torch;

namespace DpoSharp.Losses;

/// <summary>
/// <c>robust</c>: the unbiased DPO loss under label noise ε (Chowdhury et al., 2024),
/// [−(1−ε)·log σ(β·logits) + ε·log σ(−β·logits)] / (1 − 2ε).
/// </summary>
public sealed class RobustLoss : PreferenceLossBase
{
    /// <summary>Creates the loss; label smoothing must be below 0.5.</summary>
    public RobustLoss(LossOptions options)
        : base(options)
    {
        if (Options.LabelSmoothing >= 0.5)
        {
            throw new DpoSharpException($"label_smoothing must be below 0.5 for loss_type robust (got {Options.LabelSmoothing}).");
        }
    }

    /// <inheritdoc/>
    public override string Name => LossTypes.Robust;

    /// <inheritdoc/>
    protected override Tensor ComputeLosses(PreferenceTerms terms, double beta)
    {
        var z = terms.Logits * beta;
        double eps = Options.LabelSmoothing;
        return ((-nn.functional.logsigmoid(z) * (1 - eps)) + (nn.functional.logsigmoid(-z) * eps)) / (1 - (2 * eps));
    }
}
