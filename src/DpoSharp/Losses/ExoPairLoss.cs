using static TorchSharp.torch;

namespace DpoSharp.Losses;

/// <summary>
/// <c>exo_pair</c>: pairwise EXO (Ji et al., 2024, eq. 16), the reverse KL between the policy's preference
/// distribution σ(±β·logits) and the labels (1−ε, ε): σ(z)·(log σ(z) − log(1−ε)) + σ(−z)·(log σ(−z) − log ε) with
/// z = β·logits; ε = <c>label_smoothing</c>, or 1e-3 when that is 0.
/// </summary>
public sealed class ExoPairLoss(LossOptions options) : PreferenceLossBase(options)
{
    /// <summary>ε used when <c>label_smoothing</c> is 0.</summary>
    public const double DefaultEpsilon = 1e-3;

    /// <inheritdoc/>
    public override string Name => LossTypes.ExoPair;

    /// <summary>The ε in use.</summary>
    public double Epsilon => Options.LabelSmoothing == 0 ? DefaultEpsilon : Options.LabelSmoothing;

    /// <inheritdoc/>
    protected override Tensor ComputeLosses(PreferenceTerms terms, double beta)
    {
        var z = terms.Logits * beta;
        double eps = Epsilon;
        return (z.sigmoid() * (nn.functional.logsigmoid(z) - Math.Log(1 - eps)))
            + ((-z).sigmoid() * (nn.functional.logsigmoid(-z) - Math.Log(eps)));
    }
}
