using static TorchSharp.torch;

namespace DpoSharp.Losses;

/// <summary>
/// <c>orpo</c>: odds-ratio preference optimisation (Hong et al., 2024; TRL's <c>ORPOTrainer</c>), reference-free. With
/// c, r the mean per-token log-probs of the chosen and rejected completions, the log-odds ratio is
/// <c>(c − r) − (log(1 − e^c) − log(1 − e^r))</c> and each pair's loss is its share of the chosen NLL (per token)
/// minus β·log σ(log-odds). Rewards β·c, β·r. Statistics <c>log_odds_ratio</c> (log σ(log-odds)),
/// <c>log_odds_chosen</c> (the log-odds) and the NLL.
/// </summary>
public sealed class OrpoLoss(LossOptions options) : ReferenceFreeLossBase(options)
{
    /// <inheritdoc/>
    public override string Name => LossTypes.Orpo;

    /// <inheritdoc/>
    public override PreferenceLossOutput Compute(PreferenceLossInput input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var (c, r) = MeanLogps(input);
        var logOdds = (c - r) - (Log1mExp(c) - Log1mExp(r));
        var ratio = nn.functional.logsigmoid(logOdds);
        var nll = ChosenNllPerPair(input);
        var losses = nll - (ratio * input.Beta);
        var stats = new Dictionary<string, Tensor>
        {
            ["log_odds_ratio"] = ratio.detach(),
            ["log_odds_chosen"] = logOdds.detach(),
        };
        return Output(losses, c, r, input.Beta, nll.mean(), stats);
    }

    /// <summary>log(1 − eˣ) for x ≤ 0, stable at both ends: log(−expm1(x)) near 0, log1p(−eˣ) below −log 2.</summary>
    internal static Tensor Log1mExp(Tensor x)
    {
        var near = x.gt(-Math.Log(2));
        var a = (-x.clamp_max(-1e-12).expm1()).log();
        var b = (-x.clamp_max(-Math.Log(2)).exp()).log1p();
        return where(near, a, b);
    }
}
