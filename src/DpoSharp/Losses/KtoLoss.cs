using static TorchSharp.torch;

namespace DpoSharp.Losses;

/// <summary>
/// <c>kto</c>: Kahneman–Tversky optimisation (Ethayarajh et al., 2024; TRL's <c>KTOTrainer</c>). With the log-ratio
/// ρ = log π − log π_ref and the KL reference point z₀: desirable examples λ_D·(1 − σ(β·(ρ − z₀))), undesirable ones
/// λ_U·(1 − σ(β·(z₀ − ρ))). Rewards β·ρ.
/// </summary>
public sealed class KtoLoss : IUnpairedLoss
{
    /// <inheritdoc/>
    public string Name => UnpairedLosses.Kto;

    /// <inheritdoc/>
    public bool UsesKl => true;

    /// <summary>
    /// TRL's KL reference point: the mean over the batch's mismatched prompt/completion rows of
    /// log π − log π_ref, clamped at 0, detached (no gradient flows through it).
    /// </summary>
    /// <param name="policyKlLogps">(B) policy log-prob sums of the mismatched rows.</param>
    /// <param name="referenceKlLogps">(B) reference log-prob sums of the same rows.</param>
    public static Tensor KlEstimate(Tensor policyKlLogps, Tensor referenceKlLogps)
    {
        ArgumentNullException.ThrowIfNull(policyKlLogps);
        ArgumentNullException.ThrowIfNull(referenceKlLogps);
        using var _ = no_grad();
        return (policyKlLogps.detach() - referenceKlLogps.detach()).mean().clamp_min(0).detach();
    }

    /// <inheritdoc/>
    public UnpairedLossOutput Compute(UnpairedLossInput input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var kl = input.Kl ?? throw new ArgumentException("the kto loss needs the KL estimate.", nameof(input));
        var rho = input.PolicyLogps - input.ReferenceLogps;
        var desirable = 1 - nn.functional.sigmoid((rho - kl) * input.Beta);
        var undesirable = 1 - nn.functional.sigmoid((kl - rho) * input.Beta);
        return new UnpairedLossOutput(UnpairedLosses.Weighted(desirable, undesirable, input), UnpairedLosses.Rewards(input));
    }
}
