using static TorchSharp.torch;

namespace DpoSharp.Losses;

/// <summary>
/// <c>ipo</c>: IPO (Azar et al., 2023, eq. 17), (logits − 1/(2β))², where β is the paper's τ. As in TRL, policy and
/// reference log-probs are averaged per completion token first, and so are the rewards.
/// </summary>
public sealed class IpoLoss(LossOptions options) : PreferenceLossBase(options)
{
    /// <inheritdoc/>
    public override string Name => LossTypes.Ipo;

    /// <inheritdoc/>
    protected override bool PerToken => true;

    /// <inheritdoc/>
    protected override Tensor ComputeLosses(PreferenceTerms terms, double beta)
        => (terms.Logits - (1 / (2 * beta))).square();
}
