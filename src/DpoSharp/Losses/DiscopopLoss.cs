using static TorchSharp.torch;

namespace DpoSharp.Losses;

/// <summary>
/// <c>discopop</c>: DiscoPOP, the log-ratio modulated loss (Chris Lu et al., 2024, eq. 5). With
/// z = β·((log π_w − log π_l) − (log π_ref,w − log π_ref,l)) and m = σ(z/τ): (1 − m)·(−log σ(z)) + m·exp(−z).
/// </summary>
public sealed class DiscopopLoss(LossOptions options) : PreferenceLossBase(options)
{
    /// <inheritdoc/>
    public override string Name => LossTypes.Discopop;

    /// <inheritdoc/>
    protected override Tensor ComputeLosses(PreferenceTerms terms, double beta)
    {
        var z = ((terms.PolicyChosen - terms.PolicyRejected) - (terms.ReferenceChosen - terms.ReferenceRejected)) * beta;
        var modulation = (z / Options.DiscopopTau).sigmoid();
        return (-nn.functional.logsigmoid(z) * (1 - modulation)) + ((-z).exp() * modulation);
    }
}
