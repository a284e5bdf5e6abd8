using static TorchSharp.torch;

namespace DpoSharp.Losses;

/// <summary>
/// Base of the losses that never look at a reference model (<c>orpo</c>, <c>simpo</c>, <c>cpo</c>): reference
/// log-probs in the input are ignored, rewards are β·(policy log-probs) and the chosen NLL is the batch's mean over
/// chosen completion tokens (TRL's cross-entropy), split into per-pair contributions so that the mean of the (P)
/// losses is TRL's batch loss.
/// </summary>
public abstract class ReferenceFreeLossBase : IPreferenceLoss
{
    /// <summary>Creates the loss with its options (validated, copied).</summary>
    protected ReferenceFreeLossBase(LossOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        Options = options.Clone();
    }

    /// <inheritdoc/>
    public abstract string Name { get; }

    /// <summary>The loss's options (a private copy).</summary>
    protected LossOptions Options { get; }

    /// <inheritdoc/>
    public abstract PreferenceLossOutput Compute(PreferenceLossInput input);

    /// <summary>(P) mean per-token log-probs of the chosen and rejected completions (sum / token count).</summary>
    public static (Tensor Chosen, Tensor Rejected) MeanLogps(PreferenceLossInput input)
    {
        ArgumentNullException.ThrowIfNull(input);
        return input.PerTokenAveraged
            ? (input.PolicyChosenLogps, input.PolicyRejectedLogps)
            : (input.PolicyChosenLogps / input.ChosenTokenCounts.clamp_min(1), input.PolicyRejectedLogps / input.RejectedTokenCounts.clamp_min(1));
    }

    /// <summary>(P) summed log-probs of the chosen and rejected completions.</summary>
    public static (Tensor Chosen, Tensor Rejected) SumLogps(PreferenceLossInput input)
    {
        ArgumentNullException.ThrowIfNull(input);
        return input.PerTokenAveraged
            ? (input.PolicyChosenLogps * input.ChosenTokenCounts, input.PolicyRejectedLogps * input.RejectedTokenCounts)
            : (input.PolicyChosenLogps, input.PolicyRejectedLogps);
    }

    /// <summary>
    /// (P) each pair's share of the batch NLL of the chosen completions: −s_i / mean_j(n_j), whose mean over the
    /// pairs is −Σ s / Σ n (<see cref="SftLoss.ChosenNll"/>, TRL's cross-entropy over the chosen tokens). A pair alone
    /// gets its own per-token NLL −s_i / n_i.
    /// </summary>
    public static Tensor ChosenNllPerPair(PreferenceLossInput input)
    {
        var (sums, _) = SumLogps(input);
        return -sums / input.ChosenTokenCounts.mean().clamp_min(1e-12);
    }

    /// <summary>The output with rewards β·<paramref name="chosen"/>, β·<paramref name="rejected"/> (detached).</summary>
    protected static PreferenceLossOutput Output(Tensor losses, Tensor chosen, Tensor rejected, double beta, Tensor? nll, IReadOnlyDictionary<string, Tensor>? statistics = null)
    {
        using var _ = no_grad();
        return new PreferenceLossOutput(losses, (chosen.detach() * beta).detach(), (rejected.detach() * beta).detach())
        {
            NllLoss = nll?.detach(),
            PairStatistics = statistics,
        };
    }
}
