using static TorchSharp.torch;

namespace DpoSharp.Losses;

/// <summary><c>hinge</c>: the SLiC hinge loss on the normalised likelihood (Zhao et al., 2023), max(0, 1 − β·logits).</summary>
public sealed class HingeLoss(LossOptions options) : PreferenceLossBase(options)
{
    /// <inheritdoc/>
    public override string Name => LossTypes.Hinge;

    /// <inheritdoc/>
    protected override Tensor ComputeLosses(PreferenceTerms terms, double beta)
        => nn.functional.relu(1 - (terms.Logits * beta));
}
