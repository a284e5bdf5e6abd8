using System.Diagnostics;
using DpoSharp.Data;
using DpoSharp.Models;
using DpoSharp.Models.Lora;
using DpoSharp.Training;
using DpoSharp.Training.Engine;
using TorchSharp;

namespace DpoSharp.Diagnostics;

/// <summary>What <see cref="DpoStepBenchmark.Run"/> measures: a published model shape with random weights (nothing
/// downloaded) on synthetic pairs.</summary>
public sealed record BenchmarkOptions
{
    /// <summary>Model shape: a preset name (<see cref="ModelPresets.Names"/>) or a model folder whose config.json
    /// gives the shape (its weights are not read).</summary>
    /// <value>Default <c>gpt2</c>.</value>
    public string Preset { get; init; } = "gpt2";

    /// <summary>The model config <see cref="Preset"/> names.</summary>
    public ModelConfig ModelConfig() => Directory.Exists(Preset) ? Models.ModelConfig.Load(Preset) : ModelPresets.Get(Preset);

    /// <summary>Pairs per optimizer step (one micro-batch).</summary>
    /// <value>Default 4.</value>
    public int Pairs { get; init; } = 4;

    /// <summary>Prompt tokens per pair.</summary>
    /// <value>Default 128.</value>
    public int PromptLength { get; init; } = 128;

    /// <summary>Tokens per completion (chosen and rejected alike).</summary>
    /// <value>Default 128.</value>
    public int CompletionLength { get; init; } = 128;

    /// <summary>Timed optimizer steps (after one warm-up step).</summary>
    /// <value>Default 3.</value>
    public int Steps { get; init; } = 3;

    /// <summary>Intra-op threads; 0: libtorch's default.</summary>
    /// <value>Default 0.</value>
    public int Threads { get; init; }

    /// <summary>Reference log-probs precomputed once (TRL's <c>precompute_ref_log_probs</c>) instead of a frozen copy.</summary>
    /// <value>Default false.</value>
    public bool CachedReference { get; init; }

    /// <summary>Train LoRA adapters on the frozen base (<see cref="Lora"/>); the reference is the base with adapters disabled.</summary>
    /// <value>Default false.</value>
    public bool UsePeft { get; init; }

    /// <summary>LoRA settings used with <see cref="UsePeft"/>.</summary>
    public LoraOptions Lora { get; init; } = new();

    /// <summary>Memory levers (gradient checkpointing: on by default with LoRA; chunked log-probs; dtype of frozen weights).</summary>
    public MemoryOptions Memory { get; init; } = new();

    /// <summary>Device of the model (<c>cpu</c>, <c>cuda</c>, …).</summary>
    /// <value>Default <c>cpu</c>.</value>
    public string Device { get; init; } = "cpu";

    /// <summary>Checks the values; throws <see cref="DpoSharpException"/> naming the bad one.</summary>
    public void Validate()
    {
        ModelConfig();
        foreach (var (name, value, min) in new[] { ("pairs", Pairs, 1), ("prompt-len", PromptLength, 1), ("completion-len", CompletionLength, 1), ("steps", Steps, 1), ("threads", Threads, 0) })
        {
            if (value < min)
            {
                throw new DpoSharpException($"--{name} must be at least {min}, got {value}.");
            }
        }

        Memory.Validate();
        if (UsePeft)
        {
            Lora.Validate();
        }
    }

    /// <summary>The options of the benchmark's DPO run (one micro-batch of <see cref="Pairs"/> per step, no files but
    /// the final model in <paramref name="outputDir"/>).</summary>
    public DpoOptions ToDpoOptions(string outputDir)
    {
        var args = new DpoOptions
        {
            OutputDir = outputDir,
            PerDeviceTrainBatchSize = Pairs,
            MaxSteps = Steps + 1,
            LoggingSteps = Steps + 1,
            SaveSteps = int.MaxValue,
            ReportTo = [ReportTarget.None],
            MaxLength = null,
            MaxPromptLength = null,
            LearningRate = 1e-6,
            PrecomputeRefLogProbs = CachedReference,
            UsePeft = UsePeft,
            LoraR = Lora.R,
            LoraAlpha = Lora.LoraAlpha,
            LoraDropout = Lora.LoraDropout,
            LoraTargetModules = [.. Lora.TargetModules],
            GradientCheckpointing = Memory.GradientCheckpointing,
            LogitsChunkSize = Memory.LogitsChunkSize,
            CompletionOnlyLogits = Memory.CompletionOnlyLogits,
            TorchDtype = Memory.TorchDtype,
        };
        return args;
    }
}

/// <summary>The measurements of one benchmark run.</summary>
/// <param name="Options">What was run.</param>
/// <param name="Parameters">Model parameters.</param>
/// <param name="TrainableParameters">Parameters the optimizer updates.</param>
/// <param name="Threads">Intra-op threads used.</param>
/// <param name="SecondsPerStep">Mean wall time of the timed steps.</param>
/// <param name="WarmupSeconds">Wall time of the warm-up step.</param>
/// <param name="PeakRssBytes">The process's peak resident memory (VmHWM), or null where unknown.</param>
/// <param name="Estimate">The pre-flight memory estimate and its parts.</param>
/// <param name="GradientCheckpointing">Whether decoder layers were recomputed in the backward.</param>
public sealed record BenchmarkResult(BenchmarkOptions Options, long Parameters, long TrainableParameters, int Threads, double SecondsPerStep, double WarmupSeconds, long? PeakRssBytes, MemoryEstimate Estimate, bool GradientCheckpointing)
{
    /// <summary>Pairs per second over the timed steps.</summary>
    public double PairsPerSecond => Options.Pairs / SecondsPerStep;

    /// <summary>Tokens per second (prompt and both completions of every pair) over the timed steps.</summary>
    public double TokensPerSecond => 2.0 * Options.Pairs * (Options.PromptLength + Options.CompletionLength) / SecondsPerStep;
}

/// <summary>
/// Times DPO optimizer steps on a published model shape with random weights and synthetic pairs (what
/// <c>dposharp bench</c> runs): one warm-up step, then the timed steps; reports time, throughput, peak memory and the
/// memory estimate. Checks the estimate against the memory available before building anything.
/// </summary>
public static class DpoStepBenchmark
{
    /// <summary>The memory plan of <paramref name="options"/> (for the pre-flight check and the report).</summary>
    public static MemoryPlan Plan(BenchmarkOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return MemoryPlan.ForRun(
            options.ModelConfig(),
            options.ToDpoOptions(outputDir: ""),
            rows: 2 * options.Pairs,
            sequenceLength: options.PromptLength + options.CompletionLength,
            reference: !options.CachedReference && !options.UsePeft);
    }

    /// <summary>Runs the benchmark; <paramref name="progress"/> receives each finished step (1 = warm-up). With a
    /// <paramref name="group"/> of several processes every rank runs <see cref="BenchmarkOptions.Pairs"/> pairs per step
    /// and the gradients are all-reduced (<see cref="MpiBenchmark"/>).</summary>
    /// <exception cref="DpoSharpException">Bad options, or the run would not fit in the available memory.</exception>
    public static BenchmarkResult Run(BenchmarkOptions options, Action<int, int>? progress = null, IProcessGroup? group = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        var plan = Plan(options);
        var estimate = MemoryEstimator.Estimate(plan);
        MemoryEstimator.ThrowIfTooLarge(estimate, ProcMemory.AvailableBytes(), MemoryEstimator.Fixes(plan, "--pairs", "--prompt-len / --completion-len", "--cached-reference", "--lora"));
        if (options.Threads > 0)
        {
            torch.set_num_threads(options.Threads);
        }

        var rng = new Random(0);
        int vocab = plan.Config.VocabSize;
        int[] Tokens(int n) => [.. Enumerable.Range(0, n).Select(_ => rng.Next(vocab))];
        var pairs = Enumerable.Range(0, options.Pairs * (group?.WorldSize ?? 1) * (options.Steps + 1))
            .Select(i => new TokenizedPair(Tokens(options.PromptLength), Tokens(options.CompletionLength), Tokens(options.CompletionLength)) { SourceIndex = i })
            .ToList();

        var output = Directory.CreateTempSubdirectory("dposharp-bench-").FullName;
        try
        {
            // With LoRA the frozen base is built in torch_dtype (the adapters stay fp32).
            var dtype = options.UsePeft ? options.Memory.TorchScalarType : torch.ScalarType.Float32;
            using var model = ModelLoader.Create(plan.Config, new torch.Device(options.Device), seed: 0, dtype);
            var args = options.ToDpoOptions(output);
            using var trainer = new DpoTrainer(model, refModel: null, args, pairs, padTokenId: 0);
            if (group is not null)
            {
                trainer.ProcessGroup = group;
            }

            var times = new List<double>();
            var sw = Stopwatch.StartNew();
            trainer.StepCompleted += (step, total) =>
            {
                times.Add(sw.Elapsed.TotalSeconds);
                progress?.Invoke(step, total);
                sw.Restart();
            };
            trainer.Train();
            long trainable = model.Module.parameters().Where(p => p.requires_grad).Sum(p => p.numel());
            return new BenchmarkResult(options, plan.Parameters, trainable, torch.get_num_threads(), times.Skip(1).Average(), times[0], ProcMemory.PeakRssBytes(), estimate, plan.GradientCheckpointing);
        }
        finally
        {
            Directory.Delete(output, recursive: true);
        }
    }
}
