using System.Diagnostics;
using DpoSharp.Data;
using DpoSharp.Models;
using DpoSharp.Models.Lora;
using DpoSharp.Training;
using DpoSharp.Training.Engine;
using TorchSharp;

namespace DpoSharp.Diagnostics;

/// <summary>The step a benchmark compares against (<c>--baseline</c>).</summary>
public enum BenchmarkBaseline
{
    /// <summary>No comparison.</summary>
    None,

    /// <summary>
    /// The seed article's step: four separate forwards (policy on chosen rows, policy on rejected rows, then the
    /// reference on each under <c>no_grad</c>, always a live frozen copy), each through the full (B, T, V) logits and
    /// a full-vocabulary <c>log_softmax</c>, the sigmoid DPO loss, backward and the same AdamW step.
    /// </summary>
    Naive,

    /// <summary>The measured step with prefix sharing off (one row per completion, as TRL).</summary>
    NoPrefixSharing,

    /// <summary>The measured step with padded batches (for <see cref="BenchmarkOptions.PaddingFree"/>).</summary>
    Padded,
}

/// <summary>Mean seconds per step spent in each part of a DPO step (CPU: each part's wall time; on other devices the
/// parts are not synchronised and only <see cref="Total"/> is exact).</summary>
/// <param name="ReferenceForward">Reference log-probs (frozen copy forward, cache lookup, or base without adapters).</param>
/// <param name="PolicyForward">The policy's forward, log-probs and loss.</param>
/// <param name="Backward">The backward.</param>
/// <param name="Optimizer">Gradient clipping, the AdamW update and zeroing the gradients.</param>
public sealed record StepTimes(double ReferenceForward, double PolicyForward, double Backward, double Optimizer)
{
    /// <summary>The whole step.</summary>
    public double Total => ReferenceForward + PolicyForward + Backward + Optimizer;

    /// <summary>The mean of <paramref name="steps"/>.</summary>
    public static StepTimes Mean(IReadOnlyList<StepTimes> steps) => new(
        steps.Average(s => s.ReferenceForward), steps.Average(s => s.PolicyForward), steps.Average(s => s.Backward), steps.Average(s => s.Optimizer));
}

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

    /// <summary>Intra-op threads; 0: the physical cores (<see cref="CpuTopology.PhysicalCores"/>).</summary>
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

    /// <summary>Run each pair's prompt once for both completions (<see cref="PreferenceCollator.PrefixSharing"/>).</summary>
    /// <value>Default true.</value>
    public bool PrefixSharing { get; init; } = true;

    /// <summary>Pack each batch's sequences into rows (<see cref="PreferenceCollator.PaddingFree"/>).</summary>
    /// <value>Default false.</value>
    public bool PaddingFree { get; init; }

    /// <summary>Draw each pair's prompt and completion lengths uniformly from [L/4, L] (<see cref="PromptLength"/>,
    /// <see cref="CompletionLength"/>) instead of all equal: a variable-length dataset where padding costs.</summary>
    /// <value>Default false.</value>
    public bool VariableLengths { get; init; }

    /// <summary>A second step timed in the same process, interleaved with the measured one, for <c>speedup</c>.</summary>
    /// <value>Default <see cref="BenchmarkBaseline.None"/>.</value>
    public BenchmarkBaseline Baseline { get; init; }

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

        if (!Enum.IsDefined(Baseline))
        {
            throw new DpoSharpException($"--baseline must be none, naive, no-prefix-sharing or padded (got {Baseline}).");
        }

        if (Baseline == BenchmarkBaseline.NoPrefixSharing && !PrefixSharing)
        {
            throw new DpoSharpException("--baseline no-prefix-sharing compares against prefix sharing: drop --no-prefix-sharing.");
        }

        if (Baseline == BenchmarkBaseline.Padded && !PaddingFree)
        {
            throw new DpoSharpException("--baseline padded compares against padding-free batches: add --padding-free.");
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
            PrefixSharing = PrefixSharing,
            PaddingFree = PaddingFree,
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

    /// <summary>Tokens per second (prompt and both completions of every pair, at the nominal lengths) over the timed steps.</summary>
    public double TokensPerSecond => 2.0 * Options.Pairs * (Options.PromptLength + Options.CompletionLength) / SecondsPerStep;

    /// <summary>Mean time per part of the measured step.</summary>
    public StepTimes? Split { get; init; }

    /// <summary>Mean seconds per step of <see cref="BenchmarkOptions.Baseline"/>, timed interleaved with the measured step.</summary>
    public double? BaselineSecondsPerStep { get; init; }

    /// <summary>Mean time per part of the baseline step.</summary>
    public StepTimes? BaselineSplit { get; init; }

    /// <summary>Baseline pairs per second.</summary>
    public double? BaselinePairsPerSecond => Options.Pairs / BaselineSecondsPerStep;

    /// <summary>Baseline seconds per step / measured seconds per step.</summary>
    public double? Speedup => BaselineSecondsPerStep / SecondsPerStep;

    /// <summary>The analytic FLOPs the measured step needs (<see cref="StepFlops.DpoStep"/>).</summary>
    public double NeededFlopsPerStep { get; init; }

    /// <summary>The best fp32 matmul throughput on the model's own matmul shapes, measured in the same process before
    /// and after the steps (<see cref="MatmulSpeed.PeakOnShapes"/>).</summary>
    public double GemmPeakGflops { get; init; }

    /// <summary><see cref="NeededFlopsPerStep"/> / <see cref="SecondsPerStep"/>, in GFLOP/s.</summary>
    public double AchievedGflops => NeededFlopsPerStep / SecondsPerStep / 1e9;

    /// <summary>Model FLOPs utilisation: <see cref="AchievedGflops"/> / <see cref="GemmPeakGflops"/>.</summary>
    public double Mfu => GemmPeakGflops > 0 ? AchievedGflops / GemmPeakGflops : 0;
}

/// <summary>
/// Times DPO optimizer steps on a published model shape with random weights and synthetic pairs (what
/// <c>dposharp bench</c> runs): one warm-up step, then the timed steps, each split into reference forward, policy
/// forward, backward and optimizer; with a <see cref="BenchmarkOptions.Baseline"/> a second step is timed
/// interleaved with it (same process, same batches, same AdamW) for a speed-up. Reports time, throughput, the FLOPs
/// the step needs against the fp32 matmul peak on the model's shapes (MFU), peak memory and the memory estimate.
/// Checks the estimate against the memory available before building anything. The step is the trainer's
/// (<c>CompletionLogProbs.Forward</c>, the loss, backward, gradient clipping, AdamW) without its bookkeeping.
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
            reference: (!options.CachedReference && !options.UsePeft) || options.Baseline == BenchmarkBaseline.Naive);
    }

    /// <summary>Runs the benchmark; <paramref name="progress"/> receives each finished step (1 = warm-up).</summary>
    /// <exception cref="DpoSharpException">Bad options, or the run would not fit in the available memory.</exception>
    public static BenchmarkResult Run(BenchmarkOptions options, Action<int, int>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        var plan = Plan(options);
        var estimate = MemoryEstimator.Estimate(plan);
        MemoryEstimator.ThrowIfTooLarge(estimate, ProcMemory.AvailableBytes(), MemoryEstimator.Fixes(plan, "--pairs", "--prompt-len / --completion-len", "--cached-reference", "--lora"));
        torch.set_num_threads(options.Threads > 0 ? options.Threads : CpuTopology.PhysicalCores());
        var rng = new Random(0);
        int vocab = plan.Config.VocabSize;
        int Length(int n) => options.VariableLengths ? rng.Next(Math.Max(1, n / 4), n + 1) : n;
        int[] Tokens(int n) => [.. Enumerable.Range(0, Length(n)).Select(_ => rng.Next(vocab))];
        var pairs = Enumerable.Range(0, options.Pairs * (options.Steps + 1))
            .Select(i => new TokenizedPair(Tokens(options.PromptLength), Tokens(options.CompletionLength), Tokens(options.CompletionLength)) { SourceIndex = i })
            .ToList();

        var device = new torch.Device(options.Device);
        var args = options.ToDpoOptions(outputDir: "");

        // With LoRA the frozen base is built in torch_dtype (the adapters stay fp32).
        var dtype = options.UsePeft ? options.Memory.TorchScalarType : torch.ScalarType.Float32;
        using var model = ModelLoader.Create(plan.Config, device, seed: 0, dtype);
        TrainableModel.Prepare(model, args);
        model.Module.eval(); // dropout off, as the trainers by default
        using var bench = new Bench(model, args, options, pairs);

        // The GEMM peak is the best of a measurement before and after the steps (a shared machine's load varies).
        var matmuls = model is CausalLMBase lm0 ? ModelMatmulShapes(lm0, options) : [];
        double peakBefore = matmuls.Count > 0 ? MatmulSpeed.PeakOnShapes(matmuls, device).GigaFlops : 0;
        var times = new List<double>();
        var split = new List<StepTimes>();
        var baseline = new List<StepTimes>();
        int total = options.Steps + 1;
        for (int step = 0; step < total; step++)
        {
            int[] idx = [.. Enumerable.Range(step * options.Pairs, options.Pairs)];
            var t = bench.Step(idx, options.PrefixSharing, options.PaddingFree);
            var b = options.Baseline switch
            {
                BenchmarkBaseline.Naive => bench.NaiveStep(idx),
                BenchmarkBaseline.NoPrefixSharing => bench.Step(idx, prefixSharing: false, options.PaddingFree),
                BenchmarkBaseline.Padded => bench.Step(idx, options.PrefixSharing, paddingFree: false),
                _ => null,
            };
            times.Add(t.Total);
            if (step > 0)
            {
                split.Add(t);
                if (b is not null)
                {
                    baseline.Add(b);
                }
            }

            progress?.Invoke(step + 1, total);
        }

        var shape = model is CausalLMBase lm ? FlopShape.FromModel(lm) : null;
        // The mean over the timed steps' pairs (lengths vary with VariableLengths).
        double needed = shape is null ? 0 : pairs.Skip(options.Pairs).Sum(p =>
            StepFlops.PairStep(shape, p.PromptIds.Length, p.ChosenIds.Length, p.RejectedIds.Length, options.PrefixSharing, options.CachedReference, options.UsePeft)) / options.Steps;
        double peak = matmuls.Count > 0 ? Math.Max(peakBefore, MatmulSpeed.PeakOnShapes(matmuls, device).GigaFlops) : 0;
        long trainable = model.Module.parameters().Where(p => p.requires_grad).Sum(p => p.numel());
        var mean = StepTimes.Mean(split);
        return new BenchmarkResult(options, plan.Parameters, trainable, torch.get_num_threads(), mean.Total, times[0], ProcMemory.PeakRssBytes(), estimate, plan.GradientCheckpointing)
        {
            Split = mean,
            BaselineSecondsPerStep = baseline.Count > 0 ? StepTimes.Mean(baseline).Total : null,
            BaselineSplit = baseline.Count > 0 ? StepTimes.Mean(baseline) : null,
            NeededFlopsPerStep = needed,
            GemmPeakGflops = peak,
        };
    }

    /// <summary>The (M, K, N) matmuls of the measured step's forward: every distinct decoder weight over the batch's
    /// tokens, and the <c>lm_head</c> over its completion positions.</summary>
    private static IReadOnlyList<(long M, long K, long N)> ModelMatmulShapes(CausalLMBase model, BenchmarkOptions o)
    {
        long tokens = o.Pairs * (o.PrefixSharing ? o.PromptLength + (2L * o.CompletionLength) + 1 : 2L * (o.PromptLength + o.CompletionLength)); // (at most)
        var shapes = model.named_parameters()
            .Where(kv => kv.parameter.dim() == 2 && !kv.name.Contains("lora_", StringComparison.Ordinal) && kv.parameter.shape[0] != model.Config.VocabSize && !kv.name.EndsWith("wpe.weight", StringComparison.Ordinal))
            .Select(kv => (tokens, kv.parameter.shape[1], kv.parameter.shape[0]))
            .Distinct()
            .ToList();
        shapes.Add((2L * o.Pairs * o.CompletionLength, model.Config.HiddenSize, model.Config.VocabSize));
        return shapes;
    }

    /// <summary>The model, its reference(s), optimizer and loss, and the steps the benchmark times.</summary>
    private sealed class Bench : IDisposable
    {
        private readonly ICausalLM _model;
        private readonly DpoOptions _args;
        private readonly IReadOnlyList<TokenizedPair> _pairs;
        private readonly PreferenceCollator _rows;
        private readonly IReferenceLogProbs _reference;
        private readonly ICausalLM? _frozenCopy;
        private readonly OptimizerSetup _optimizer;
        private readonly List<(string Name, TorchSharp.Modules.Parameter Param)> _trainable;
        private readonly Losses.CombinedPreferenceLoss _loss;

        public Bench(ICausalLM model, DpoOptions args, BenchmarkOptions options, IReadOnlyList<TokenizedPair> pairs)
        {
            _model = model;
            _args = args;
            _pairs = pairs;
            _rows = new PreferenceCollator(padTokenId: 0);
            bool naive = options.Baseline == BenchmarkBaseline.Naive;
            if ((!options.CachedReference && !options.UsePeft) || naive)
            {
                _frozenCopy = ModelLoader.Copy(model, dtype: options.Memory.TorchScalarType == torch.ScalarType.Float32 ? null : options.Memory.TorchScalarType);
                FrozenModelReference.Freeze(_frozenCopy);
                options.Memory.ApplyTo(_frozenCopy);
            }

            if (options.CachedReference)
            {
                using var disabled = model.HasAdapters() ? model.DisableAdapters() : null;
                _reference = PrecomputedReference.Create(model, pairs, Collator(options.PrefixSharing, options.PaddingFree), options.Pairs, cacheDir: null);
            }
            else
            {
                _reference = options.UsePeft ? new AdaptersDisabledReference(model) : new FrozenModelReference(_frozenCopy!);
            }

            _trainable = [.. model.Module.named_parameters().Where(kv => kv.parameter.requires_grad)];
            var o = args.Optimizer;
            _optimizer = OptimizerFactory.CreateAdamW(_trainable, o.LearningRate, o.AdamBeta1, o.AdamBeta2, o.AdamEpsilon, o.WeightDecay);
            _loss = args.CreateLoss();
        }

        /// <summary>The trainer's step on the pairs at <paramref name="idx"/> in the given batch layout.</summary>
        public StepTimes Step(int[] idx, bool prefixSharing, bool paddingFree)
        {
            using var scope = torch.NewDisposeScope();
            var sw = Stopwatch.StartNew();
            using var batch = Collator(prefixSharing, paddingFree).Collate(_pairs, idx, _model.Device);
            int p = batch.PairCount;
            var reference = _reference.Compute(batch, _model.Device);
            double tRef = Lap(sw);
            var lp = Losses.CompletionLogProbs.Forward(_model, batch).LogProbs;
            var input = new Losses.PreferenceLossInput(lp.Sums[..p], lp.Sums[p..], reference?.Chosen, reference?.Rejected, lp.TokenCounts[..p], lp.TokenCounts[p..], _args.Beta);
            var loss = _loss.Compute(input).Losses.sum() / p;
            double tPolicy = Lap(sw);
            loss.backward();
            double tBackward = Lap(sw);
            OptimizerStep();
            return new StepTimes(tRef, tPolicy, tBackward, Lap(sw));
        }

        /// <summary>The seed article's step (<see cref="BenchmarkBaseline.Naive"/>) on the pairs at <paramref name="idx"/>.</summary>
        public StepTimes NaiveStep(int[] idx)
        {
            using var scope = torch.NewDisposeScope();
            var sw = Stopwatch.StartNew();
            using var batch = _rows.Collate(_pairs, idx, _model.Device);
            long p = idx.Length;
            var chosenRows = torch.arange(0, p, device: _model.Device);         // (P)
            var rejectedRows = torch.arange(p, 2 * p, device: _model.Device);   // (P)
            torch.Tensor Logps(ICausalLM m, torch.Tensor rows)
            {
                var ids = batch.InputIds.index_select(0, rows);                   // (P, T)
                var logits = m.Forward(ids, batch.AttentionMask.index_select(0, rows), batch.PositionIds.index_select(0, rows)); // (P, T, V)
                var logp = logits[.., ..^1].log_softmax(-1);                       // (P, T-1, V)
                var picked = logp.gather(-1, ids[.., 1..].unsqueeze(-1)).squeeze(-1); // (P, T-1)
                return (picked * batch.CompletionMask.index_select(0, rows)[.., 1..]).sum(1); // (P)
            }

            var policyChosen = Logps(_model, chosenRows);
            var policyRejected = Logps(_model, rejectedRows);
            double tPolicy = Lap(sw);
            torch.Tensor refChosen, refRejected;
            using (torch.no_grad())
            {
                refChosen = Logps(_frozenCopy!, chosenRows);
                refRejected = Logps(_frozenCopy!, rejectedRows);
            }

            double tRef = Lap(sw);
            var margin = _args.Beta * ((policyChosen - refChosen) - (policyRejected - refRejected)); // (P)
            var loss = -torch.nn.functional.logsigmoid(margin).mean();
            loss.backward();
            double tBackward = Lap(sw);
            OptimizerStep();
            return new StepTimes(tRef, tPolicy, tBackward, Lap(sw));
        }

        public void Dispose()
        {
            _reference.Dispose();
            _frozenCopy?.Dispose();
            _optimizer.Optimizer.Dispose();
            _loss.Dispose();
        }

        private PreferenceCollator Collator(bool prefixSharing, bool paddingFree) => new(padTokenId: 0)
        {
            PrefixSharing = prefixSharing && _model is CausalLMBase,
            PaddingFree = paddingFree && _model is CausalLMBase,
        };

        private void OptimizerStep()
        {
            using (torch.no_grad())
            {
                GradientClipping.ClipGradNorm(_trainable.Select(p => p.Param), _args.MaxGradNorm, _model.Device);
            }

            AdamWStepper.Step(_optimizer.Optimizer);
            _optimizer.Optimizer.zero_grad();
        }

        private static double Lap(Stopwatch sw)
        {
            double s = sw.Elapsed.TotalSeconds;
            sw.Restart();
            return s;
        }
    }
}
