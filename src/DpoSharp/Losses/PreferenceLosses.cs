namespace DpoSharp.Losses;

/// <summary>
/// The registry of pairwise losses by TRL <c>loss_type</c> name. Register more with <see cref="Register"/>.
/// </summary>
public static class PreferenceLosses
{
    private static readonly Dictionary<string, (Func<LossOptions, IPreferenceLoss> Factory, string Description, string Paper)> Registry = new(StringComparer.Ordinal)
    {
        [LossTypes.Sigmoid] = (o => new SigmoidLoss(o), "DPO's logistic loss; with label_smoothing, conservative DPO (cDPO)", "Rafailov et al. 2023, arXiv:2305.18290; cDPO: Mitchell 2023"),
        [LossTypes.Robust] = (o => new RobustLoss(o), "unbiased DPO under label-flip noise at rate label_smoothing", "Chowdhury et al. 2024, arXiv:2403.00409"),
        [LossTypes.ExoPair] = (o => new ExoPairLoss(o), "pairwise EXO: reverse KL to the (1−ε, ε) label distribution", "Ji et al. 2024, arXiv:2402.00856"),
        [LossTypes.Hinge] = (o => new HingeLoss(o), "SLiC hinge loss on the normalised likelihood", "Zhao et al. 2023, arXiv:2305.10425"),
        [LossTypes.Ipo] = (o => new IpoLoss(o), "IPO squared loss on per-token averaged log-ratios", "Azar et al. 2023, arXiv:2310.12036"),
        [LossTypes.SppoHard] = (o => new SppoHardLoss(o), "SPPO with hard win/lose probabilities", "Wu et al. 2024, arXiv:2405.00675"),
        [LossTypes.NcaPair] = (o => new NcaPairLoss(o), "pairwise noise-contrastive alignment", "Chen et al. 2024, arXiv:2402.05369"),
        [LossTypes.BcoPair] = (o => new BcoPairLoss(o), "pairwise binary classifier optimisation with a running-mean reward shift", "Jung et al. 2024, arXiv:2404.04656"),
        [LossTypes.Aot] = (o => new AotLoss(o), "alignment via optimal transport, paired (batch-sorted margins)", "Melnyk et al. 2024, arXiv:2406.05882"),
        [LossTypes.AotUnpaired] = (o => new AotUnpairedLoss(o), "alignment via optimal transport, unpaired (sorted separately)", "Melnyk et al. 2024, arXiv:2406.05882"),
        [LossTypes.ApoZero] = (o => new ApoZeroLoss(o), "anchored preference optimisation: raise chosen, lower rejected", "D'Oosterlinck et al. 2024, arXiv:2408.06266"),
        [LossTypes.ApoDown] = (o => new ApoDownLoss(o), "anchored preference optimisation: lower both, rejected more", "D'Oosterlinck et al. 2024, arXiv:2408.06266"),
        [LossTypes.Discopop] = (o => new DiscopopLoss(o), "DiscoPOP log-ratio modulated loss (discopop_tau)", "Lu et al. 2024, arXiv:2406.08414"),
        [LossTypes.SigmoidNorm] = (o => new SigmoidNormLoss(o), "DPO's logistic loss on length-normalised log-ratios", "TRL ≥ 1.4"),
        [LossTypes.Orpo] = (o => new OrpoLoss(o), "ORPO, reference-free: chosen NLL − β·log σ(log-odds ratio) on per-token log-probs", "Hong et al. 2024, arXiv:2403.07691"),
        [LossTypes.Simpo] = (o => new SimpoLoss(o), "SimPO, reference-free: −log σ(β·(c − r) − γ) on per-token log-probs (+ cpo_alpha·NLL)", "Meng et al. 2024, arXiv:2405.14734"),
        [LossTypes.Cpo] = (o => new CpoLoss(o), "CPO, reference-free: −log σ(β·(c − r)) on summed log-probs + cpo_alpha·NLL", "Xu et al. 2024, arXiv:2401.08417"),
        [LossTypes.Sft] = (o => new SftLoss(o), "negative log-likelihood of the chosen completions (MPO/RPO term)", "Pang et al. 2024 (RPO), arXiv:2404.19733"),
    };

    /// <summary>The registered <c>loss_type</c> names.</summary>
    public static IReadOnlyList<string> Names => [.. Registry.Keys];

    /// <summary>One-line description of <paramref name="lossType"/>.</summary>
    public static string Describe(string lossType) => Lookup(lossType).Description;

    /// <summary>The paper behind <paramref name="lossType"/>.</summary>
    public static string Paper(string lossType) => Lookup(lossType).Paper;

    /// <summary>Adds (or replaces) a loss under <paramref name="name"/>.</summary>
    public static void Register(string name, Func<LossOptions, IPreferenceLoss> factory, string description = "", string paper = "")
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentNullException.ThrowIfNull(factory);
        lock (Registry)
        {
            Registry[name] = (factory, description, paper);
        }
    }

    /// <summary>True when <paramref name="lossType"/> is registered.</summary>
    public static bool IsKnown(string lossType) => Registry.ContainsKey(lossType);

    /// <summary>Creates the loss named <paramref name="lossType"/> with <paramref name="options"/> (validated).</summary>
    public static IPreferenceLoss Create(string lossType, LossOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        return Lookup(lossType).Factory(options);
    }

    /// <summary>
    /// Creates the combination of <paramref name="lossTypes"/> with <paramref name="lossWeights"/> (all 1 when null)
    /// and <see cref="LossOptions.RpoAlpha"/>; a single loss also comes wrapped, so NLL and pair weights apply.
    /// </summary>
    public static CombinedPreferenceLoss Create(IReadOnlyList<string> lossTypes, IReadOnlyList<double>? lossWeights, LossOptions options)
    {
        ArgumentNullException.ThrowIfNull(lossTypes);
        ArgumentNullException.ThrowIfNull(options);
        if (lossTypes.Count == 0)
        {
            throw new DpoSharpException($"loss_type is empty; give at least one of {string.Join(", ", Names)}.");
        }

        if (lossWeights is not null && lossWeights.Count != lossTypes.Count)
        {
            throw new DpoSharpException($"loss_weights has {lossWeights.Count} values but loss_type has {lossTypes.Count} losses; give one weight per loss.");
        }

        options.Validate();
        var parts = lossTypes.Select((t, i) => (Lookup(t).Factory(options), lossWeights?[i] ?? 1.0)).ToList();
        return new CombinedPreferenceLoss(parts, options.RpoAlpha);
    }

    private static (Func<LossOptions, IPreferenceLoss> Factory, string Description, string Paper) Lookup(string lossType)
    {
        ArgumentNullException.ThrowIfNull(lossType);
        if (Registry.TryGetValue(lossType, out var entry))
        {
            return entry;
        }

        throw new DpoSharpException(UnknownMessage(lossType));
    }

    /// <summary>
    /// "loss_type 'x' is unknown", with the loss to use instead: the built-in loss another name means
    /// (<see cref="LossTypes.KnownAliases"/>: <c>dpo</c> → <c>sigmoid</c>), else the closest registered names.
    /// </summary>
    internal static string UnknownMessage(string lossType)
    {
        ArgumentNullException.ThrowIfNull(lossType);
        IReadOnlyList<string> close = LossTypes.KnownAliases.TryGetValue(lossType.Trim(), out var instead)
            ? [instead]
            : NameSuggestions.Closest(lossType, Names);
        var hint = close.Count > 0 ? $" Did you mean {string.Join(" or ", close)}?" : string.Empty;
        return $"loss_type '{lossType}' is unknown.{hint} Known: {string.Join(", ", Names)}.";
    }
}
