using DpoSharp.Training;

namespace DpoSharp.Cli.Options;

/// <summary>
/// The order in which an options type lists its options (help, README table, saved config). Reflection lists a
/// derived type's properties before its base type's, so the order is written down here; a type not listed here
/// lists its base type's options first, each type's in declaration order.
/// </summary>
internal static class OptionOrder
{
    private static readonly Dictionary<Type, string[]> Orders = new()
    {
        [typeof(DpoOptions)] =
        [
            nameof(DpoOptions.Model),
            nameof(DpoOptions.RefModel),
            nameof(DpoOptions.Device),
            nameof(DpoOptions.DisableDropout),

            // data
            nameof(DpoOptions.Dataset),
            nameof(DpoOptions.EvalDataset),
            nameof(DpoOptions.DatasetTrainSplit),
            nameof(DpoOptions.DatasetTestSplit),
            nameof(DpoOptions.PromptColumn),
            nameof(DpoOptions.ChosenColumn),
            nameof(DpoOptions.RejectedColumn),
            nameof(DpoOptions.SystemColumn),
            nameof(DpoOptions.MaxLength),
            nameof(DpoOptions.MaxPromptLength),
            nameof(DpoOptions.MaxCompletionLength),
            nameof(DpoOptions.TruncationMode),
            nameof(DpoOptions.PadToMultipleOf),
            nameof(DpoOptions.PaddingFree),
            nameof(DpoOptions.PrefixSharing),
            nameof(DpoOptions.GroupByLength),

            // loss
            nameof(DpoOptions.Algorithm),
            nameof(DpoOptions.Beta),
            nameof(DpoOptions.LossType),
            nameof(DpoOptions.LossWeights),
            nameof(DpoOptions.LabelSmoothing),
            nameof(DpoOptions.ReferenceFree),
            nameof(DpoOptions.FDivergenceType),
            nameof(DpoOptions.FAlphaDivergenceCoef),
            nameof(DpoOptions.DiscopopTau),
            nameof(DpoOptions.RpoAlpha),
            nameof(DpoOptions.SimpoGamma),
            nameof(DpoOptions.CpoAlpha),
            nameof(DpoOptions.DesirableWeight),
            nameof(DpoOptions.UndesirableWeight),
            nameof(DpoOptions.UseWeighting),
            nameof(DpoOptions.LdAlpha),
            nameof(DpoOptions.SyncRefModel),
            nameof(DpoOptions.RefModelMixupAlpha),
            nameof(DpoOptions.RefModelSyncSteps),
            nameof(DpoOptions.PrecomputeRefLogProbs),
            nameof(DpoOptions.PrecomputeRefBatchSize),

            // optimisation
            nameof(DpoOptions.LearningRate),
            nameof(DpoOptions.PerDeviceTrainBatchSize),
            nameof(DpoOptions.PerDeviceEvalBatchSize),
            nameof(DpoOptions.GradientAccumulationSteps),
            nameof(DpoOptions.NumTrainEpochs),
            nameof(DpoOptions.MaxSteps),
            nameof(DpoOptions.LrSchedulerType),
            nameof(DpoOptions.WarmupRatio),
            nameof(DpoOptions.WarmupSteps),
            nameof(DpoOptions.WeightDecay),
            nameof(DpoOptions.AdamBeta1),
            nameof(DpoOptions.AdamBeta2),
            nameof(DpoOptions.AdamEpsilon),
            nameof(DpoOptions.MaxGradNorm),
            nameof(DpoOptions.MaxBadSteps),
            nameof(DpoOptions.Seed),

            // LoRA and memory
            nameof(DpoOptions.UsePeft),
            nameof(DpoOptions.Adapter),
            nameof(DpoOptions.LoraR),
            nameof(DpoOptions.LoraAlpha),
            nameof(DpoOptions.LoraDropout),
            nameof(DpoOptions.LoraTargetModules),
            nameof(DpoOptions.GradientCheckpointing),
            nameof(DpoOptions.LogitsChunkSize),
            nameof(DpoOptions.CompletionOnlyLogits),
            nameof(DpoOptions.TorchDtype),

            // logging, evaluation, saving
            nameof(DpoOptions.OutputDir),
            nameof(DpoOptions.LoggingSteps),
            nameof(DpoOptions.SaveSteps),
            nameof(DpoOptions.SaveTotalLimit),
            nameof(DpoOptions.EvalStrategy),
            nameof(DpoOptions.EvalSteps),
            nameof(DpoOptions.ReportTo),
            nameof(DpoOptions.ResumeFromCheckpoint),
            nameof(DpoOptions.Resume),
            nameof(DpoOptions.OverwriteOutputDir),
        ],
        [typeof(SftOptions)] =
        [
            nameof(SftOptions.Model),
            nameof(SftOptions.Device),
            nameof(SftOptions.DisableDropout),

            // data
            nameof(SftOptions.Dataset),
            nameof(SftOptions.EvalDataset),
            nameof(SftOptions.DatasetTrainSplit),
            nameof(SftOptions.DatasetTestSplit),
            nameof(SftOptions.DatasetTextField),
            nameof(SftOptions.MaxLength),
            nameof(SftOptions.CompletionOnlyLoss),
            nameof(SftOptions.GroupByLength),

            // optimisation
            nameof(SftOptions.LearningRate),
            nameof(SftOptions.PerDeviceTrainBatchSize),
            nameof(SftOptions.PerDeviceEvalBatchSize),
            nameof(SftOptions.GradientAccumulationSteps),
            nameof(SftOptions.NumTrainEpochs),
            nameof(SftOptions.MaxSteps),
            nameof(SftOptions.LrSchedulerType),
            nameof(SftOptions.WarmupRatio),
            nameof(SftOptions.WarmupSteps),
            nameof(SftOptions.WeightDecay),
            nameof(SftOptions.AdamBeta1),
            nameof(SftOptions.AdamBeta2),
            nameof(SftOptions.AdamEpsilon),
            nameof(SftOptions.MaxGradNorm),
            nameof(SftOptions.MaxBadSteps),
            nameof(SftOptions.Seed),

            // LoRA and memory
            nameof(SftOptions.UsePeft),
            nameof(SftOptions.Adapter),
            nameof(SftOptions.LoraR),
            nameof(SftOptions.LoraAlpha),
            nameof(SftOptions.LoraDropout),
            nameof(SftOptions.LoraTargetModules),
            nameof(SftOptions.GradientCheckpointing),
            nameof(SftOptions.LogitsChunkSize),
            nameof(SftOptions.CompletionOnlyLogits),
            nameof(SftOptions.TorchDtype),

            // logging, evaluation, saving
            nameof(SftOptions.OutputDir),
            nameof(SftOptions.LoggingSteps),
            nameof(SftOptions.SaveSteps),
            nameof(SftOptions.SaveTotalLimit),
            nameof(SftOptions.EvalStrategy),
            nameof(SftOptions.EvalSteps),
            nameof(SftOptions.ReportTo),
            nameof(SftOptions.ResumeFromCheckpoint),
            nameof(SftOptions.Resume),
            nameof(SftOptions.OverwriteOutputDir),
        ],
    };

    /// <summary>
    /// <paramref name="properties"/> (the options of <paramref name="type"/>) in listing order. Throws
    /// <see cref="InvalidOperationException"/> when the written-down order of <paramref name="type"/> misses an
    /// option or names one the type does not have.
    /// </summary>
    public static List<System.Reflection.PropertyInfo> Sort(Type type, IReadOnlyList<System.Reflection.PropertyInfo> properties)
    {
        if (!Orders.TryGetValue(type, out var names))
        {
            return [.. properties.OrderBy(p => Depth(p.DeclaringType!)).ThenBy(p => p.MetadataToken)];
        }

        var byName = properties.ToDictionary(p => p.Name, StringComparer.Ordinal);
        var unknown = names.Where(n => !byName.ContainsKey(n)).ToList();
        var unlisted = byName.Keys.Except(names, StringComparer.Ordinal).ToList();
        if (unknown.Count > 0 || unlisted.Count > 0 || names.Distinct(StringComparer.Ordinal).Count() != names.Length)
        {
            throw new InvalidOperationException(
                $"The option order of {type.Name} does not match its properties (not listed: {string.Join(", ", unlisted)}; " +
                $"not options: {string.Join(", ", unknown)}). Update {nameof(OptionOrder)}.");
        }

        return [.. names.Select(n => byName[n])];
    }

    private static int Depth(Type t)
    {
        int depth = 0;
        for (var b = t.BaseType; b is not null; b = b.BaseType)
        {
            depth++;
        }

        return depth;
    }
}
