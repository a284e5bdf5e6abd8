namespace DpoSharp.Losses;

/// <summary>
/// Hyper-parameters of the pairwise losses other than β (β travels with each <see cref="PreferenceLossInput"/>).
/// Names follow TRL's <c>DPOConfig</c>. Call <see cref="Validate"/> before use; <see cref="PreferenceLosses.Create(string, LossOptions)"/>
/// does.
/// </summary>
public sealed class LossOptions
{
    /// <summary>Reverse KL: standard DPO.</summary>
    public const string ReverseKl = "reverse_kl";

    /// <summary>Forward KL.</summary>
    public const string ForwardKl = "forward_kl";

    /// <summary>Jensen–Shannon divergence.</summary>
    public const string JsDivergence = "js_divergence";

    /// <summary>α-divergence (see <see cref="FAlphaDivergenceCoef"/>).</summary>
    public const string AlphaDivergence = "alpha_divergence";

    /// <summary>The accepted <see cref="FDivergenceType"/> values.</summary>
    public static IReadOnlyList<string> FDivergenceTypes { get; } = [ReverseKl, ForwardKl, JsDivergence, AlphaDivergence];

    /// <summary>
    /// Probability that a preference label is flipped (cDPO for <c>sigmoid</c>, robust DPO, the ε of <c>exo_pair</c>
    /// and the AOT losses). Must lie in [0, 0.5]; strictly below 0.5 for <c>robust</c>.
    /// </summary>
    /// <value>Default 0.</value>
    public double LabelSmoothing { get; set; }

    /// <summary>Ignore reference log-probs: they are treated as 0 everywhere, including the rewards.</summary>
    /// <value>Default false.</value>
    public bool ReferenceFree { get; set; }

    /// <summary>
    /// Divergence used to turn policy/reference log-ratios into the scores compared by the sigmoid-family losses:
    /// <c>reverse_kl</c>, <c>forward_kl</c>, <c>js_divergence</c> or <c>alpha_divergence</c>.
    /// </summary>
    /// <value>Default <c>reverse_kl</c>.</value>
    public string FDivergenceType { get; set; } = ReverseKl;

    /// <summary>α of the α-divergence, <c>f(u) = (1 − u^−α)/α</c>. Must be positive.</summary>
    /// <value>Default 1.0.</value>
    public double FAlphaDivergenceCoef { get; set; } = 1.0;

    /// <summary>Temperature τ of the DiscoPOP log-ratio modulation. Must be positive.</summary>
    /// <value>Default 0.05.</value>
    public double DiscopopTau { get; set; } = 0.05;

    /// <summary>Weight α of the RPO negative log-likelihood term added to every pair's loss; null: no NLL term.</summary>
    /// <value>Default null.</value>
    public double? RpoAlpha { get; set; }

    /// <summary>γ of <c>simpo</c>: the target reward margin, −log σ(β·(c − r) − γ). Must be finite.</summary>
    /// <value>Default 0.5.</value>
    public double SimpoGamma { get; set; } = 0.5;

    /// <summary>
    /// Weight of the chosen NLL (per token) added by <c>cpo</c> and <c>simpo</c> (TRL's <c>CPOConfig.cpo_alpha</c>).
    /// The SimPO paper uses 0. Must be non-negative.
    /// </summary>
    /// <value>Default 1.0.</value>
    public double CpoAlpha { get; set; } = 1.0;

    /// <summary>Checks every value; throws <see cref="DpoSharpException"/> naming the option.</summary>
    public void Validate()
    {
        if (double.IsNaN(LabelSmoothing) || LabelSmoothing < 0 || LabelSmoothing > 0.5)
        {
            throw new DpoSharpException($"label_smoothing must be between 0 and 0.5 (got {LabelSmoothing}).");
        }

        if (!FDivergenceTypes.Contains(FDivergenceType))
        {
            throw new DpoSharpException($"f_divergence_type '{FDivergenceType}' is unknown; use one of {string.Join(", ", FDivergenceTypes)}.");
        }

        if (!(FAlphaDivergenceCoef > 0) || double.IsInfinity(FAlphaDivergenceCoef))
        {
            throw new DpoSharpException($"f_alpha_divergence_coef must be a positive number (got {FAlphaDivergenceCoef}).");
        }

        if (!(DiscopopTau > 0) || double.IsInfinity(DiscopopTau))
        {
            throw new DpoSharpException($"discopop_tau must be a positive number (got {DiscopopTau}).");
        }

        if (RpoAlpha is double a && (double.IsNaN(a) || a < 0 || double.IsInfinity(a)))
        {
            throw new DpoSharpException($"rpo_alpha must be a non-negative number (got {a}).");
        }

        if (!double.IsFinite(SimpoGamma))
        {
            throw new DpoSharpException($"simpo_gamma must be a finite number (got {SimpoGamma}).");
        }

        if (!double.IsFinite(CpoAlpha) || CpoAlpha < 0)
        {
            throw new DpoSharpException($"cpo_alpha must be a non-negative number (got {CpoAlpha}).");
        }
    }

    /// <summary>A copy.</summary>
    public LossOptions Clone() => (LossOptions)MemberwiseClone();
}
