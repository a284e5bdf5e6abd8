using System.ComponentModel;
using static DpoSharp.OptionChecks;

namespace DpoSharp.Training.Objectives;

/// <summary>
/// The options only KTO has (TRL's <c>KTOConfig</c> names). Part of <see cref="DpoOptions.Kto"/>; checked by
/// <see cref="DpoOptions.Validate"/> (refused unless <c>algorithm</c> is <c>kto</c>).
/// </summary>
public sealed class KtoObjectiveOptions
{
    /// <summary>λ_D: the weight of desirable examples' losses (TRL advises λ_D·n_D / (λ_U·n_U) in [1, 4/3]).</summary>
    /// <value>Default 1.0.</value>
    [Description("KTO: weight of desirable examples' losses")]
    public double DesirableWeight { get; set; } = 1.0;

    /// <summary>λ_U: the weight of undesirable examples' losses.</summary>
    /// <value>Default 1.0.</value>
    [Description("KTO: weight of undesirable examples' losses")]
    public double UndesirableWeight { get; set; } = 1.0;

    /// <summary>True when every option has its default.</summary>
    public bool IsDefault => DesirableWeight == 1.0 && UndesirableWeight == 1.0;

    /// <summary>A copy.</summary>
    public KtoObjectiveOptions Clone() => (KtoObjectiveOptions)MemberwiseClone();

    /// <summary>Throws <see cref="DpoSharpException"/> naming the first bad option.</summary>
    internal void Validate()
    {
        Require(Finite(DesirableWeight) && DesirableWeight > 0, $"desirable_weight must be a positive number (got {DesirableWeight}).");
        Require(Finite(UndesirableWeight) && UndesirableWeight > 0, $"undesirable_weight must be a positive number (got {UndesirableWeight}).");
    }
}
