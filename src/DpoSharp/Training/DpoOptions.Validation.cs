using System.Text.RegularExpressions;
using DpoSharp.Losses;

namespace DpoSharp.Training;

public sealed partial class DpoOptions
{
    /// <summary>
    /// Checks every option; throws <see cref="DpoSharpException"/> whose message names the option, the bad value and
    /// what is accepted. Call after loading and applying overrides, before any work.
    /// </summary>
    public void Validate()
    {
        static void Require(bool ok, string message)
        {
            if (!ok)
            {
                throw new DpoSharpException(message);
            }
        }

        static bool Finite(double v) => double.IsFinite(v);

        Require(Finite(Beta) && Beta > 0, $"beta must be a positive number (got {Beta}).");
        Require(Finite(LearningRate) && LearningRate >= 0, $"learning_rate must be a non-negative number (got {LearningRate}).");
        Require(PerDeviceTrainBatchSize >= 1, $"per_device_train_batch_size must be at least 1 (got {PerDeviceTrainBatchSize}).");
        Require(PerDeviceEvalBatchSize >= 1, $"per_device_eval_batch_size must be at least 1 (got {PerDeviceEvalBatchSize}).");
        Require(GradientAccumulationSteps >= 1, $"gradient_accumulation_steps must be at least 1 (got {GradientAccumulationSteps}).");
        Require(MaxLength is null or >= 2, $"max_length must be at least 2 tokens, or null for no limit (got {MaxLength}).");
        Require(MaxPromptLength is null or >= 1, $"max_prompt_length must be at least 1, or null for no limit (got {MaxPromptLength}).");
        Require(MaxCompletionLength is null or >= 1, $"max_completion_length must be at least 1, or null for no limit (got {MaxCompletionLength}).");
        Require(
            MaxLength is null || MaxPromptLength is null || MaxPromptLength < MaxLength,
            $"max_prompt_length ({MaxPromptLength}) must be below max_length ({MaxLength}) to leave room for the completion.");
        Require(SystemColumn.Length > 0, "system_column must name a column.");
        Require(TruncationModes.Contains(TruncationMode), $"truncation_mode '{TruncationMode}' is unknown; use {string.Join(" or ", TruncationModes)}.");
        Require(PadToMultipleOf is null or >= 1, $"pad_to_multiple_of must be at least 1 (got {PadToMultipleOf}).");
        ToDatasetOptions().Validate();
        Require(!PaddingFree, "padding_free is not supported yet; remove it or set it to false.");

        Require(LossType.Count > 0, $"loss_type is empty; give at least one of {string.Join(", ", PreferenceLosses.Names)}.");
        foreach (var t in LossType)
        {
            if (!PreferenceLosses.IsKnown(t))
            {
                var close = NameSuggestions.Closest(t, PreferenceLosses.Names);
                throw new DpoSharpException($"loss_type '{t}' is unknown.{(close.Count > 0 ? $" Did you mean {string.Join(" or ", close)}?" : string.Empty)} Known: {string.Join(", ", PreferenceLosses.Names)}.");
            }
        }

        Require(LossType.Distinct().Count() == LossType.Count, $"loss_type lists a loss twice ({string.Join(", ", LossType)}).");
        if (LossWeights is not null)
        {
            Require(LossWeights.Count == LossType.Count, $"loss_weights has {LossWeights.Count} values but loss_type has {LossType.Count} losses; give one weight per loss.");
            Require(LossWeights.All(w => Finite(w) && w >= 0), $"loss_weights must be non-negative numbers (got {string.Join(", ", LossWeights)}).");
        }

        ToLossOptions().Validate();
        Require(!(LossType.Contains("robust") && LabelSmoothing >= 0.5), $"label_smoothing must be below 0.5 for loss_type robust (got {LabelSmoothing}).");
        Require(!(ReferenceFree && RefModel is not null), "reference_free and ref_model contradict each other; remove one.");
        Require(!(ReferenceFree && PrecomputeRefLogProbs), "reference_free and precompute_ref_log_probs contradict each other; remove one.");
        Require(PrecomputeRefBatchSize is null or >= 1, $"precompute_ref_batch_size must be at least 1 (got {PrecomputeRefBatchSize}).");

        Require(Finite(NumTrainEpochs) && NumTrainEpochs >= 0, $"num_train_epochs must be a non-negative number (got {NumTrainEpochs}).");
        Require(MaxSteps == -1 || MaxSteps >= 1, $"max_steps must be -1 (use num_train_epochs) or at least 1 (got {MaxSteps}).");
        Require(MaxSteps > 0 || NumTrainEpochs > 0, "num_train_epochs is 0 and max_steps is not set: nothing to train; set one of them.");
        Require(LrSchedulerTypes.Contains(LrSchedulerType), $"lr_scheduler_type '{LrSchedulerType}' is unknown; use one of {string.Join(", ", LrSchedulerTypes)}.");
        Require(Finite(WarmupRatio) && WarmupRatio is >= 0 and <= 1, $"warmup_ratio must be between 0 and 1 (got {WarmupRatio}).");
        Require(WarmupSteps >= 0, $"warmup_steps must be 0 or more (got {WarmupSteps}).");
        Require(Finite(WeightDecay) && WeightDecay >= 0, $"weight_decay must be a non-negative number (got {WeightDecay}).");
        Require(Finite(AdamBeta1) && AdamBeta1 is >= 0 and < 1, $"adam_beta1 must be in [0, 1) (got {AdamBeta1}).");
        Require(Finite(AdamBeta2) && AdamBeta2 is >= 0 and < 1, $"adam_beta2 must be in [0, 1) (got {AdamBeta2}).");
        Require(Finite(AdamEpsilon) && AdamEpsilon > 0, $"adam_epsilon must be a positive number (got {AdamEpsilon}).");
        Require(Finite(MaxGradNorm) && MaxGradNorm >= 0, $"max_grad_norm must be a non-negative number, 0 for no clipping (got {MaxGradNorm}).");
        Require(Seed >= 0, $"seed must be 0 or more (got {Seed}).");
        Require(DeviceRegex().IsMatch(Device), $"device '{Device}' is not understood; use auto, cpu, cuda or cuda:N.");

        Require(!string.IsNullOrWhiteSpace(OutputDir), "output_dir must name a directory.");
        Require(LoggingSteps >= 1, $"logging_steps must be at least 1 (got {LoggingSteps}).");
        Require(SaveSteps >= 1, $"save_steps must be at least 1 (got {SaveSteps}).");
        Require(SaveTotalLimit is null or >= 1, $"save_total_limit must be at least 1 (got {SaveTotalLimit}).");
        Require(EvalStrategies.Contains(EvalStrategy), $"eval_strategy '{EvalStrategy}' is unknown; use one of {string.Join(", ", EvalStrategies)}.");
        Require(EvalSteps is null or >= 1, $"eval_steps must be at least 1 (got {EvalSteps}).");
        foreach (var r in ReportTo)
        {
            Require(ReportTargets.Contains(r), $"report_to '{r}' is unknown; use any of {string.Join(", ", ReportTargets)}.");
        }

        Require(!(ReportTo.Contains("none") && ReportTo.Count > 1), "report_to 'none' cannot be combined with other sinks.");
        Require(ResumeFromCheckpoint is null || !string.IsNullOrWhiteSpace(ResumeFromCheckpoint), "resume_from_checkpoint must name a checkpoint directory.");
    }

    [GeneratedRegex("^(auto|cpu|cuda(:[0-9]+)?)$")]
    private static partial Regex DeviceRegex();
}
