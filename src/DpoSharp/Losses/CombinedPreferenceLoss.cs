using static TorchSharp.torch;

namespace DpoSharp.Losses;

/// <summary>
/// Several losses at once, TRL-style (<c>loss_type</c> list + <c>loss_weights</c>, e.g. MPO's sigmoid + bco_pair + sft):
/// per pair, Σ wᵢ·lossᵢ (+ <c>rpo_alpha</c>·NLL), times <see cref="PreferenceLossInput.PairWeights"/> when given.
/// As in TRL 0.28 the reported rewards are the same weighted sum of each loss's rewards, and when <c>ipo</c> is in
/// the list every loss sees per-token averaged log-probs. <see cref="PreferenceLosses.Create(IReadOnlyList{string}, IReadOnlyList{double}?, LossOptions)"/>
/// builds it.
/// </summary>
public sealed class CombinedPreferenceLoss : IPreferenceLoss, IStatefulPreferenceLoss, IDisposable
{
    private readonly IReadOnlyList<(IPreferenceLoss Loss, double Weight)> parts;
    private readonly bool averagePerToken;

    /// <summary>Creates the combination.</summary>
    /// <param name="parts">Losses (distinct names) and their weights.</param>
    /// <param name="rpoAlpha">Weight of the chosen NLL added to every pair's loss (RPO); null for none.</param>
    public CombinedPreferenceLoss(IReadOnlyList<(IPreferenceLoss Loss, double Weight)> parts, double? rpoAlpha = null)
    {
        ArgumentNullException.ThrowIfNull(parts);
        if (parts.Count == 0)
        {
            throw new ArgumentException("At least one loss is needed.", nameof(parts));
        }

        if (parts.Select(p => p.Loss.Name).Distinct().Count() != parts.Count)
        {
            throw new DpoSharpException($"loss_type lists a loss twice ({string.Join(", ", parts.Select(p => p.Loss.Name))}); give each loss once and set its weight in loss_weights.");
        }

        this.parts = [.. parts];
        RpoAlpha = rpoAlpha;
        averagePerToken = parts.Any(p => p.Loss is IpoLoss);
    }

    /// <inheritdoc/>
    public string Name => string.Join(",", parts.Select(p => p.Loss.Name));

    /// <summary>The losses and their weights.</summary>
    public IReadOnlyList<(IPreferenceLoss Loss, double Weight)> Parts => parts;

    /// <summary>The RPO NLL weight, or null.</summary>
    public double? RpoAlpha { get; }

    /// <summary>True when the output carries <see cref="PreferenceLossOutput.NllLoss"/> (an <c>sft</c> or reference-free
    /// part, or <c>rpo_alpha</c>).</summary>
    public bool UsesNll => RpoAlpha is not null || parts.Any(p => p.Loss is SftLoss or ReferenceFreeLossBase);

    /// <inheritdoc/>
    public PreferenceLossOutput Compute(PreferenceLossInput input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var effective = input;
        if (averagePerToken && !input.PerTokenAveraged)
        {
            var cc = input.ChosenTokenCounts.clamp_min(1);
            var rc = input.RejectedTokenCounts.clamp_min(1);
            effective = input with
            {
                PolicyChosenLogps = input.PolicyChosenLogps / cc,
                PolicyRejectedLogps = input.PolicyRejectedLogps / rc,
                ReferenceChosenLogps = input.ReferenceChosenLogps is null ? null : input.ReferenceChosenLogps / cc,
                ReferenceRejectedLogps = input.ReferenceRejectedLogps is null ? null : input.ReferenceRejectedLogps / rc,
                PerTokenAveraged = true,
            };
        }

        Tensor? losses = null, chosen = null, rejected = null, nll = null;
        IReadOnlyDictionary<string, Tensor>? statistics = null;
        foreach (var (loss, weight) in parts)
        {
            var o = loss.Compute(effective);
            losses = losses is null ? o.Losses * weight : losses + (o.Losses * weight);
            chosen = chosen is null ? o.ChosenRewards * weight : chosen + (o.ChosenRewards * weight);
            rejected = rejected is null ? o.RejectedRewards * weight : rejected + (o.RejectedRewards * weight);
            nll ??= o.NllLoss;
            statistics ??= o.PairStatistics;
        }

        if (RpoAlpha is double alpha)
        {
            var rpo = SftLoss.ChosenNll(input);
            losses = losses! + (rpo * alpha);
            nll ??= rpo.detach();
        }

        if (input.PairWeights is not null)
        {
            losses = losses! * input.PairWeights;
        }

        return new PreferenceLossOutput(losses!, chosen!.detach(), rejected!.detach()) { NllLoss = nll, PairStatistics = statistics };
    }

    /// <inheritdoc/>
    public IReadOnlyDictionary<string, double> SaveState()
    {
        var state = new Dictionary<string, double>();
        foreach (var (loss, _) in parts)
        {
            if (loss is IStatefulPreferenceLoss s)
            {
                foreach (var (k, v) in s.SaveState())
                {
                    state[$"{loss.Name}/{k}"] = v;
                }
            }
        }

        return state;
    }

    /// <inheritdoc/>
    public void LoadState(IReadOnlyDictionary<string, double> state)
    {
        ArgumentNullException.ThrowIfNull(state);
        foreach (var (loss, _) in parts)
        {
            if (loss is IStatefulPreferenceLoss s)
            {
                var prefix = loss.Name + "/";
                s.LoadState(state.Where(kv => kv.Key.StartsWith(prefix, StringComparison.Ordinal))
                    .ToDictionary(kv => kv.Key[prefix.Length..], kv => kv.Value));
            }
        }
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        foreach (var (loss, _) in parts)
        {
            (loss as IDisposable)?.Dispose();
        }
    }
}
