using static TorchSharp.torch;

namespace DpoSharp.Losses;

/// <summary>
/// An f-divergence as a per-sequence score of the log-ratio r = log π − log π_ref; the sigmoid-family losses compare
/// score(r_w) − score(r_l) (TRL's <c>logits</c>). Constant terms cancel in the difference and are dropped.
/// </summary>
public abstract class FDivergence
{
    /// <summary>The f-divergence's name (<c>f_divergence_type</c>).</summary>
    public abstract string Name { get; }

    /// <summary>The score of a (P) log-ratio tensor.</summary>
    public abstract Tensor Score(Tensor logRatio);

    /// <summary>The divergence selected by <paramref name="options"/>.</summary>
    public static FDivergence From(LossOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return options.FDivergenceType switch
        {
            LossOptions.ReverseKl => ReverseKlDivergence.Instance,
            LossOptions.ForwardKl => ForwardKlDivergence.Instance,
            LossOptions.JsDivergence => JsDivergence.Instance,
            LossOptions.AlphaDivergence => new AlphaDivergence(options.FAlphaDivergenceCoef),
            _ => throw new DpoSharpException($"f_divergence_type '{options.FDivergenceType}' is unknown; use one of {string.Join(", ", LossOptions.FDivergenceTypes)}."),
        };
    }
}

/// <summary>Reverse KL (standard DPO): score(r) = r.</summary>
public sealed class ReverseKlDivergence : FDivergence
{
    /// <summary>The instance.</summary>
    public static ReverseKlDivergence Instance { get; } = new();

    /// <inheritdoc/>
    public override string Name => LossOptions.ReverseKl;

    /// <inheritdoc/>
    public override Tensor Score(Tensor logRatio) => logRatio.alias();
}

/// <summary>Forward KL: f'(u) = 1 − 1/u, so score(r) = −exp(−r) (TRL ≥ 0.29).</summary>
public sealed class ForwardKlDivergence : FDivergence
{
    /// <summary>The instance.</summary>
    public static ForwardKlDivergence Instance { get; } = new();

    /// <inheritdoc/>
    public override string Name => LossOptions.ForwardKl;

    /// <inheritdoc/>
    public override Tensor Score(Tensor logRatio) => -(-logRatio).exp();
}

/// <summary>Jensen–Shannon: f'(u) = log(2u/(1+u)), so score(r) = r − softplus(r) = log σ(r).</summary>
public sealed class JsDivergence : FDivergence
{
    /// <summary>The instance.</summary>
    public static JsDivergence Instance { get; } = new();

    /// <inheritdoc/>
    public override string Name => LossOptions.JsDivergence;

    /// <inheritdoc/>
    public override Tensor Score(Tensor logRatio) => logRatio - nn.functional.softplus(logRatio);
}

/// <summary>
/// α-divergence with f(u) = (1 − u^−α)/α as in TRL 0.28: score(r) = −exp(−α·r)/α, the exponent capped at
/// log(float32 max) = 88.7228 against overflow.
/// </summary>
public sealed class AlphaDivergence : FDivergence
{
    /// <summary>The exponent cap: log of the largest float32, floored to 4 decimals (as TRL's <c>cap_exp</c>).</summary>
    public const double ExponentCap = 88.7228;

    /// <summary>Creates the divergence with coefficient <paramref name="alpha"/> (&gt; 0).</summary>
    public AlphaDivergence(double alpha)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(alpha);
        Alpha = alpha;
    }

    /// <summary>α.</summary>
    public double Alpha { get; }

    /// <inheritdoc/>
    public override string Name => LossOptions.AlphaDivergence;

    /// <inheritdoc/>
    public override Tensor Score(Tensor logRatio) => -(logRatio * -Alpha).clamp_max(ExponentCap).exp() / Alpha;
}
