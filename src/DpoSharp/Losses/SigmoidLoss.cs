using static TorchSharp.torch;

namespace DpoSharp.Losses;

/// <summary>
/// <c>sigmoid</c>: the DPO loss −log σ(β·logits) (Rafailov et al., 2023), with label smoothing ε the conservative DPO
/// (cDPO) mixture −(1−ε)·log σ(β·logits) − ε·log σ(−β·logits).
/// </summary>
public sealed class SigmoidLoss(LossOptions options) : PreferenceLossBase(options)
{
    /// <inheritdoc/>
    public override string Name => LossTypes.Sigmoid;

    /// <inheritdoc/>
    protected override Tensor ComputeLosses(PreferenceTerms terms, double beta)
        => SmoothedLogistic(terms.Logits * beta, Options.LabelSmoothing);

    /// <summary>−(1−ε)·log σ(z) − ε·log σ(−z).</summary>
    internal static Tensor SmoothedLogistic(Tensor z, double eps)
    {
        var loss = -nn.functional.logsigmoid(z) * (1 - eps);
        return eps == 0 ? loss : loss - (nn.functional.logsigmoid(-z) * eps);
    }
}
