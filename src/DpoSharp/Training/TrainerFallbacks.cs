using DpoSharp.Losses;
using DpoSharp.Models;
using static TorchSharp.torch;

namespace DpoSharp.Training;

/// <summary>Loss construction for the trainer. (Placeholder until the losses stream's PreferenceLosses is merged.)</summary>
internal static class TrainerLosses
{
    public static IPreferenceLoss Create(DpoOptions args) => string.Join(",", args.LossType) switch
    {
        "sigmoid" => new SigmoidFallbackLoss(args.LabelSmoothing),
        _ => throw new DpoSharpException($"loss_type '{string.Join(",", args.LossType)}' is not available in this build; use sigmoid."),
    };

    private sealed class SigmoidFallbackLoss(double labelSmoothing) : IPreferenceLoss
    {
        public string Name => "sigmoid";

        public PreferenceLossOutput Compute(PreferenceLossInput input)
        {
            var chosenRatio = input.ReferenceChosenLogps is null ? input.PolicyChosenLogps : input.PolicyChosenLogps - input.ReferenceChosenLogps;
            var rejectedRatio = input.ReferenceRejectedLogps is null ? input.PolicyRejectedLogps : input.PolicyRejectedLogps - input.ReferenceRejectedLogps;
            var logits = chosenRatio - rejectedRatio;
            var losses = (-nn.functional.logsigmoid(input.Beta * logits) * (1 - labelSmoothing))
                - (nn.functional.logsigmoid(-input.Beta * logits) * labelSmoothing);
            return new PreferenceLossOutput(losses, (input.Beta * chosenRatio).detach(), (input.Beta * rejectedRatio).detach());
        }
    }
}

/// <summary>Model copies for the default reference. (Placeholder until the models stream is merged.)</summary>
internal static class TrainerModels
{
    public static ICausalLM Copy(ICausalLM model) =>
        throw new DpoSharpException("no reference model given: pass a reference model (--ref-model), or set precompute_ref_log_probs or reference_free.");
}
