using static TorchSharp.torch;

namespace DpoSharp.Losses;

/// <summary>
/// What an unpaired (KTO-family) loss sees for B examples: (B) fp32 completion log-prob sums of the policy and the
/// reference, the (B) bool labels (true = desirable) and the KL reference point (a detached 0-d tensor, or null).
/// </summary>
/// <param name="PolicyLogps">(B) policy log-prob sums.</param>
/// <param name="ReferenceLogps">(B) reference log-prob sums.</param>
/// <param name="Labels">(B) bool labels.</param>
/// <param name="Kl">The KL estimate z₀ (see <see cref="KtoLoss.KlEstimate"/>), or null when the loss uses none.</param>
/// <param name="Beta">β.</param>
/// <param name="DesirableWeight">λ_D, the weight of desirable examples' losses.</param>
/// <param name="UndesirableWeight">λ_U, the weight of undesirable examples' losses.</param>
public sealed record UnpairedLossInput(Tensor PolicyLogps, Tensor ReferenceLogps, Tensor Labels, Tensor? Kl, double Beta, double DesirableWeight = 1.0, double UndesirableWeight = 1.0);

/// <summary>(B) per-example losses (weights applied) and rewards β·(log π − log π_ref) (detached).</summary>
public sealed record UnpairedLossOutput(Tensor Losses, Tensor Rewards);

/// <summary>An unpaired loss (TRL's <c>KTOConfig.loss_type</c> names). One class per loss.</summary>
public interface IUnpairedLoss
{
    /// <summary>TRL's name.</summary>
    string Name { get; }

    /// <summary>True when the loss needs the KL estimate (so the batch needs its mismatched rows).</summary>
    bool UsesKl { get; }

    /// <summary>The per-example losses and rewards.</summary>
    UnpairedLossOutput Compute(UnpairedLossInput input);
}

/// <summary>The unpaired losses by name.</summary>
public static class UnpairedLosses
{
    /// <summary>KTO's loss.</summary>
    public const string Kto = "kto";

    /// <summary>APO-zero for unpaired data.</summary>
    public const string ApoZeroUnpaired = "apo_zero_unpaired";

    /// <summary>The names.</summary>
    public static IReadOnlyList<string> Names { get; } = [Kto, ApoZeroUnpaired];

    /// <summary>Creates the loss <paramref name="name"/>.</summary>
    public static IUnpairedLoss Create(string name) => name switch
    {
        Kto => new KtoLoss(),
        ApoZeroUnpaired => new ApoZeroUnpairedLoss(),
        _ => throw new DpoSharpException($"loss_type '{name}' is not a KTO loss; use one of {string.Join(", ", Names)}."),
    };

    /// <summary>(B) losses of desirable rows weighted λ_D, of undesirable rows λ_U.</summary>
    internal static Tensor Weighted(Tensor desirable, Tensor undesirable, UnpairedLossInput input) =>
        where(input.Labels, desirable * input.DesirableWeight, undesirable * input.UndesirableWeight);

    /// <summary>(B) β·(log π − log π_ref), detached.</summary>
    internal static Tensor Rewards(UnpairedLossInput input)
    {
        using var _ = no_grad();
        return ((input.PolicyLogps.detach() - input.ReferenceLogps) * input.Beta).detach();
    }
}
