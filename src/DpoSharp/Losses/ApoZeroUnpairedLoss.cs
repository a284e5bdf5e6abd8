using static TorchSharp.torch;

namespace DpoSharp.Losses;

/// <summary>
/// <c>apo_zero_unpaired</c>: anchored preference optimisation for unpaired data (D'Oosterlinck et al., 2024; TRL's
/// <c>KTOTrainer</c>): with ρ = log π − log π_ref, desirable examples λ_D·(1 − σ(β·ρ)) (raise their likelihood),
/// undesirable ones λ_U·σ(β·ρ) (lower it). No KL estimate. Rewards β·ρ.
/// </summary>
public sealed class ApoZeroUnpairedLoss : IUnpairedLoss
{
    /// <inheritdoc/>
    public string Name => UnpairedLosses.ApoZeroUnpaired;

    /// <inheritdoc/>
    public bool UsesKl => false;

    /// <inheritdoc/>
    public UnpairedLossOutput Compute(UnpairedLossInput input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var s = nn.functional.sigmoid((input.PolicyLogps - input.ReferenceLogps) * input.Beta);
        return new UnpairedLossOutput(UnpairedLosses.Weighted(1 - s, s, input), UnpairedLosses.Rewards(input));
    }
}
