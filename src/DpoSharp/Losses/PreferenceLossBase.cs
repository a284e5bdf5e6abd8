using static TorchSharp.torch;

namespace DpoSharp.Losses;

/// <summary>
/// The quantities every pairwise loss starts from, resolved once: reference log-probs (zeros when reference-free
/// or absent), log-ratios against the reference and the f-divergence scores.
/// </summary>
public sealed class PreferenceTerms
{
    private PreferenceTerms(Tensor policyChosen, Tensor policyRejected, Tensor refChosen, Tensor refRejected, Tensor chosenCounts, Tensor rejectedCounts, FDivergence divergence, bool perTokenAveraged)
    {
        PerTokenAveraged = perTokenAveraged;
        PolicyChosen = policyChosen;
        PolicyRejected = policyRejected;
        ReferenceChosen = refChosen;
        ReferenceRejected = refRejected;
        ChosenTokenCounts = chosenCounts;
        RejectedTokenCounts = rejectedCounts;
        ChosenLogRatios = policyChosen - refChosen;
        RejectedLogRatios = policyRejected - refRejected;
        Divergence = divergence;
    }

    /// <summary>(P) policy log-probs of the chosen completions (sums, or per-token averages for per-token losses).</summary>
    public Tensor PolicyChosen { get; }

    /// <summary>(P) policy log-probs of the rejected completions.</summary>
    public Tensor PolicyRejected { get; }

    /// <summary>(P) reference log-probs of the chosen completions; zeros when reference-free.</summary>
    public Tensor ReferenceChosen { get; }

    /// <summary>(P) reference log-probs of the rejected completions; zeros when reference-free.</summary>
    public Tensor ReferenceRejected { get; }

    /// <summary>(P) chosen completion token counts.</summary>
    public Tensor ChosenTokenCounts { get; }

    /// <summary>(P) rejected completion token counts.</summary>
    public Tensor RejectedTokenCounts { get; }

    /// <summary>(P) log π(y_w) − log π_ref(y_w).</summary>
    public Tensor ChosenLogRatios { get; }

    /// <summary>(P) log π(y_l) − log π_ref(y_l).</summary>
    public Tensor RejectedLogRatios { get; }

    /// <summary>True when the log-probs are per-token averages rather than sums.</summary>
    public bool PerTokenAveraged { get; }

    /// <summary>The f-divergence in use.</summary>
    public FDivergence Divergence { get; }

    /// <summary>
    /// (P) TRL's <c>logits</c>: the difference of the f-divergence scores of chosen and rejected log-ratios; for
    /// reverse KL simply (log π_w − log π_l) − (log π_ref,w − log π_ref,l).
    /// </summary>
    public Tensor Logits => Divergence.Score(ChosenLogRatios) - Divergence.Score(RejectedLogRatios);

    /// <summary>Resolves the terms for <paramref name="input"/>.</summary>
    /// <param name="input">The loss input.</param>
    /// <param name="options">Loss options (reference-free, f-divergence).</param>
    /// <param name="perToken">Divide log-probs by the completion token counts (unless the input already did).</param>
    public static PreferenceTerms From(PreferenceLossInput input, LossOptions options, bool perToken = false)
    {
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(options);
        var pc = input.PolicyChosenLogps;
        var pr = input.PolicyRejectedLogps;
        if (!options.ReferenceFree && (input.ReferenceChosenLogps is null) != (input.ReferenceRejectedLogps is null))
        {
            throw new ArgumentException("Both reference log-prob tensors must be given, or neither.");
        }

        bool noRef = options.ReferenceFree || input.ReferenceChosenLogps is null;

        var rc = noRef ? zeros_like(pc) : input.ReferenceChosenLogps!;
        var rr = noRef ? zeros_like(pr) : input.ReferenceRejectedLogps!;
        if (perToken && !input.PerTokenAveraged)
        {
            var cc = input.ChosenTokenCounts.clamp_min(1);
            var rcn = input.RejectedTokenCounts.clamp_min(1);
            pc = pc / cc;
            pr = pr / rcn;
            rc = rc / cc;
            rr = rr / rcn;
        }

        return new PreferenceTerms(pc, pr, rc, rr, input.ChosenTokenCounts, input.RejectedTokenCounts, FDivergence.From(options), input.PerTokenAveraged || perToken);
    }
}

/// <summary>
/// Base of the pairwise losses: resolves <see cref="PreferenceTerms"/> and the rewards
/// <c>β·(log π − log π_ref)</c> (detached; from per-token averages for per-token losses such as <c>ipo</c>).
/// </summary>
public abstract class PreferenceLossBase : IPreferenceLoss
{
    /// <summary>Creates the loss with its options (validated).</summary>
    protected PreferenceLossBase(LossOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        Options = options.Clone();
    }

    /// <inheritdoc/>
    public abstract string Name { get; }

    /// <summary>The loss's options (a private copy).</summary>
    protected LossOptions Options { get; }

    /// <summary>True when the loss works on per-token averaged log-probs (TRL's <c>ipo</c>).</summary>
    protected virtual bool PerToken => false;

    /// <inheritdoc/>
    public virtual PreferenceLossOutput Compute(PreferenceLossInput input)
    {
        var terms = PreferenceTerms.From(input, Options, PerToken);
        var losses = ComputeLosses(terms, input.Beta);
        Tensor chosenRewards, rejectedRewards;
        using (no_grad())
        {
            chosenRewards = (terms.ChosenLogRatios.detach() * input.Beta).detach();
            rejectedRewards = (terms.RejectedLogRatios.detach() * input.Beta).detach();
        }

        return new PreferenceLossOutput(losses, chosenRewards, rejectedRewards);
    }

    /// <summary>Per-pair losses (P) from the resolved terms.</summary>
    protected abstract Tensor ComputeLosses(PreferenceTerms terms, double beta);
}
