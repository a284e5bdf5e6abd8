using static TorchSharp.torch;

namespace DpoSharp.Losses;

/// <summary>
/// What a pairwise preference loss sees for P pairs. All tensors are (P) fp32 on the model's device.
/// Log-probs are <b>sums</b> over completion tokens; token counts let losses average per token (IPO, sigmoid_norm).
/// Reference log-probs are null when training reference-free.
/// </summary>
public sealed record PreferenceLossInput(
    Tensor PolicyChosenLogps,
    Tensor PolicyRejectedLogps,
    Tensor? ReferenceChosenLogps,
    Tensor? ReferenceRejectedLogps,
    Tensor ChosenTokenCounts,
    Tensor RejectedTokenCounts,
    double Beta)
{
    /// <summary>
    /// True when the four log-prob tensors already hold per-token averages (sum / token count) instead of sums —
    /// what TRL does to every loss of a combination that includes <c>ipo</c>. Per-token losses then do not divide
    /// again, and <c>sft</c> recovers sums as average × count.
    /// </summary>
    public bool PerTokenAveraged { get; init; }

    /// <summary>
    /// Optional (P) per-pair weights multiplied into the final losses (TRL's <c>use_weighting</c>, WPO); computed by
    /// the trainer from the logits, detached. Applied by <see cref="CombinedPreferenceLoss"/>.
    /// </summary>
    public Tensor? PairWeights { get; init; }
}

/// <summary>Per-pair losses and the implicit rewards, all (P). Rewards are detached.</summary>
public sealed record PreferenceLossOutput(Tensor Losses, Tensor ChosenRewards, Tensor RejectedRewards)
{
    /// <summary>
    /// The batch negative log-likelihood of the chosen completions (mean over their tokens), a detached scalar, when
    /// the loss uses it (<c>sft</c> or <c>rpo_alpha</c>); logged as <c>nll_loss</c>. Null otherwise.
    /// </summary>
    public Tensor? NllLoss { get; init; }

    /// <summary>
    /// Further per-pair statistics of the loss, each (P) and detached, logged under their name as a mean per pair
    /// (ORPO's <c>log_odds_ratio</c>, <c>log_odds_chosen</c>). Null: none.
    /// </summary>
    public IReadOnlyDictionary<string, Tensor>? PairStatistics { get; init; }
}

/// <summary>One pairwise preference loss (TRL's <c>loss_type</c> names). One class per loss.</summary>
public interface IPreferenceLoss
{
    /// <summary>TRL's <c>loss_type</c> name, e.g. <c>sigmoid</c>.</summary>
    string Name { get; }

    /// <summary>Computes per-pair losses (not yet averaged) and rewards.</summary>
    PreferenceLossOutput Compute(PreferenceLossInput input);
}
