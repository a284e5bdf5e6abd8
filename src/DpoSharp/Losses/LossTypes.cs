namespace DpoSharp.Losses;

/// <summary>
/// The <c>loss_type</c> names of the built-in pairwise losses (TRL's spelling). The set is open: more losses are added
/// with <see cref="PreferenceLosses.Register"/>, and <c>loss_type</c> is checked against that registry.
/// </summary>
public static class LossTypes
{
    /// <summary>DPO's logistic loss; with label_smoothing, cDPO. TRL's <c>"dpo"</c> is this loss.</summary>
    public const string Sigmoid = "sigmoid";

    /// <summary>Robust DPO under label noise.</summary>
    public const string Robust = "robust";

    /// <summary>Pairwise EXO.</summary>
    public const string ExoPair = "exo_pair";

    /// <summary>SLiC hinge loss.</summary>
    public const string Hinge = "hinge";

    /// <summary>IPO.</summary>
    public const string Ipo = "ipo";

    /// <summary>SPPO with hard probabilities.</summary>
    public const string SppoHard = "sppo_hard";

    /// <summary>Pairwise NCA.</summary>
    public const string NcaPair = "nca_pair";

    /// <summary>Pairwise BCO.</summary>
    public const string BcoPair = "bco_pair";

    /// <summary>AOT, paired.</summary>
    public const string Aot = "aot";

    /// <summary>AOT, unpaired.</summary>
    public const string AotUnpaired = "aot_unpaired";

    /// <summary>APO-zero.</summary>
    public const string ApoZero = "apo_zero";

    /// <summary>APO-down.</summary>
    public const string ApoDown = "apo_down";

    /// <summary>DiscoPOP.</summary>
    public const string Discopop = "discopop";

    /// <summary>DPO's logistic loss on length-normalised log-ratios.</summary>
    public const string SigmoidNorm = "sigmoid_norm";

    /// <summary>NLL of the chosen completions (the MPO/RPO term).</summary>
    public const string Sft = "sft";

    /// <summary>ORPO: odds-ratio preference optimisation, reference-free (TRL's <c>ORPOTrainer</c>).</summary>
    public const string Orpo = "orpo";

    /// <summary>SimPO: length-normalised margin loss, reference-free (TRL's <c>CPOTrainer</c>, loss_type simpo).</summary>
    public const string Simpo = "simpo";

    /// <summary>CPO: DPO's logistic loss without a reference plus the chosen NLL (TRL's <c>CPOTrainer</c>, loss_type sigmoid).</summary>
    public const string Cpo = "cpo";

    /// <summary>
    /// The losses that never look at a reference model: a run with one of them loads none (as <c>reference_free</c>)
    /// and the loss is the only <c>loss_type</c>.
    /// </summary>
    public static IReadOnlyList<string> ReferenceFreeLosses { get; } = [Orpo, Simpo, Cpo];

    /// <summary>
    /// Names used elsewhere for a built-in loss (TRL's <c>dpo</c>, the papers' names), with the <c>loss_type</c> to
    /// give instead; used in "did you mean" hints.
    /// </summary>
    public static IReadOnlyDictionary<string, string> KnownAliases { get; } = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase)
    {
        ["dpo"] = Sigmoid,
        ["cdpo"] = Sigmoid + " with label_smoothing",
        ["rdpo"] = Robust,
        ["slic"] = Hinge,
        ["exo"] = ExoPair,
        ["nca"] = NcaPair,
        ["bco"] = BcoPair,
        ["sppo"] = SppoHard,
        ["apo"] = ApoZero,
        ["rpo"] = Sigmoid + " with rpo_alpha",
        ["wpo"] = Sigmoid + " with use_weighting",
    };
}
