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
    double Beta);

/// <summary>Per-pair losses and the implicit rewards, all (P). Rewards are detached.</summary>
public sealed record PreferenceLossOutput(Tensor Losses, Tensor ChosenRewards, Tensor RejectedRewards);

/// <summary>One pairwise preference loss (TRL's <c>loss_type</c> names). One class per loss.</summary>
public interface IPreferenceLoss
{
    /// <summary>TRL's <c>loss_type</c> name, e.g. <c>sigmoid</c>.</summary>
    string Name { get; }

    /// <summary>Computes per-pair losses (not yet averaged) and rewards.</summary>
    PreferenceLossOutput Compute(PreferenceLossInput input);
}
