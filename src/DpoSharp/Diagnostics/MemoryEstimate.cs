using System.Globalization;
using DpoSharp.Models;
using DpoSharp.Models.Lora;
using DpoSharp.Training;
using static TorchSharp.torch;

namespace DpoSharp.Diagnostics;

/// <summary>What a training run's peak memory is made of, in bytes (an estimate made before anything is allocated).</summary>
/// <param name="Weights">The model's parameters (base weights in their dtype, plus fp32 adapters).</param>
/// <param name="Gradients">fp32 gradients of the trainable parameters.</param>
/// <param name="OptimizerState">AdamW's two fp32 moments per trainable parameter.</param>
/// <param name="Reference">A frozen reference copy of the weights (0 with adapters disabled, precomputed or no reference).</param>
/// <param name="Activations">What the forward keeps for the backward at the largest micro-batch, plus the logits.</param>
/// <param name="Runtime">libtorch, .NET and allocator overhead.</param>
public sealed record MemoryEstimate(long Weights, long Gradients, long OptimizerState, long Reference, long Activations, long Runtime)
{
    /// <summary>The estimated peak.</summary>
    public long Total => Weights + Gradients + OptimizerState + Reference + Activations + Runtime;

    /// <summary>The parts as <c>name: 1.23 GB</c>, for messages and the bench table.</summary>
    public IReadOnlyList<(string Name, long Bytes)> Parts =>
    [
        ("weights", Weights),
        ("gradients", Gradients),
        ("optimizer state", OptimizerState),
        ("reference", Reference),
        ("activations", Activations),
        ("runtime", Runtime),
    ];

    /// <summary>Bytes as gigabytes with two decimals (10^9 bytes, as <c>/usr/bin/time</c> and <c>free -g</c> users read them).</summary>
    public static string Gb(long bytes) => (bytes / 1e9).ToString("F2", CultureInfo.InvariantCulture) + " GB";

    /// <inheritdoc/>
    public override string ToString() => $"{Gb(Total)} ({string.Join(", ", Parts.Where(p => p.Bytes > 0).Select(p => $"{p.Name} {Gb(p.Bytes)}"))})";
}

/// <summary>The shape of a run, as far as memory is concerned.</summary>
public sealed record MemoryPlan
{
    /// <summary>The model's config.</summary>
    public required ModelConfig Config { get; init; }

    /// <summary>Parameters of the base model.</summary>
    public required long Parameters { get; init; }

    /// <summary>Trainable parameters (all of them for full fine-tuning; the adapters' with LoRA).</summary>
    public required long TrainableParameters { get; init; }

    /// <summary>Sequences in the largest forward (2 × pairs per micro-batch for preference data).</summary>
    public required int Rows { get; init; }

    /// <summary>Tokens per row (prompt + the longer completion).</summary>
    public required int SequenceLength { get; init; }

    /// <summary>Bytes per base-weight element (4 for fp32, 2 for bf16/fp16).</summary>
    public int WeightBytes { get; init; } = 4;

    /// <summary>Bytes per element of the reference copy's weights (4 for fp32, 2 for bf16/fp16).</summary>
    public int ReferenceBytes { get; init; } = 4;

    /// <summary>A frozen copy of the weights serves as the reference.</summary>
    public bool ReferenceCopy { get; init; }

    /// <summary>Decoder layers recompute their activations in the backward.</summary>
    public bool GradientCheckpointing { get; init; }

    /// <summary>Log-probs come from hidden states in chunks of positions: the (rows, T, V) logits never exist in full.</summary>
    public bool ChunkedLogProbs { get; init; }

    /// <summary>Positions per chunk of <see cref="ChunkedLogProbs"/>.</summary>
    public int LogitChunk { get; init; } = 128;

    /// <summary>
    /// The plan of a training run of a <paramref name="config"/> model with <paramref name="options"/> (LoRA, memory
    /// levers, dtype of frozen weights) whose largest forward has <paramref name="rows"/> rows of
    /// <paramref name="sequenceLength"/> tokens. Parameters are counted on the meta device: nothing is allocated.
    /// </summary>
    /// <param name="config">The model's config.</param>
    /// <param name="options">The run's options.</param>
    /// <param name="rows">Rows of the largest forward (2 × pairs per micro-batch for preference data).</param>
    /// <param name="sequenceLength">Tokens of the longest row.</param>
    /// <param name="reference">The run keeps a reference model in memory (a frozen copy or a separate reference
    /// model; not the adapters-disabled base of a LoRA run, not precomputed log-probs).</param>
    /// <exception cref="DpoSharpException">LoRA targets that match no layer of the model.</exception>
    public static MemoryPlan ForRun(ModelConfig config, TrainingOptions options, int rows, int sequenceLength, bool reference)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(options);
        using var model = ModelLoader.Build(config, META);
        long parameters = model.parameters().Sum(p => p.numel());
        bool lora = options.TrainsAdapters;
        long trainable = parameters;
        if (lora)
        {
            var loraOptions = options.Adapter is { } dir ? PeftAdapter.ReadConfig(dir) : options.Lora;
            trainable = model.AdapterParameterCount(loraOptions);
        }

        var dtype = options.Memory.TorchScalarType;
        int frozenBytes = dtype == ScalarType.Float32 ? 4 : 2;
        return new MemoryPlan
        {
            Config = config,
            Parameters = parameters,
            TrainableParameters = trainable,
            Rows = rows,
            SequenceLength = sequenceLength,
            WeightBytes = lora ? frozenBytes : 4,
            ReferenceBytes = frozenBytes,
            ReferenceCopy = reference,
            GradientCheckpointing = options.Memory.EffectiveGradientCheckpointing(lora),
            ChunkedLogProbs = options.Memory.LogitsChunkSize > 0,
            LogitChunk = Math.Max(1, options.Memory.LogitsChunkSize),
        };
    }
}

/// <summary>
/// Estimates a run's peak memory from its shape, and checks it against the memory available before anything is
/// allocated, so that a run that cannot fit stops within seconds with the numbers and what would make it fit instead
/// of being killed by the kernel's OOM killer.
/// </summary>
public static class MemoryEstimator
{
    /// <summary>libtorch + .NET + allocator slack measured on this project's runs (≈ 0.5 GB).</summary>
    public const long RuntimeBytes = 500_000_000;

    /// <summary>Estimates the peak of <paramref name="plan"/>.</summary>
    /// <remarks>
    /// Activations per decoder layer and token, fp32: ≈ 14·h + 5·I values (norms, q/k/v, attention output,
    /// residuals; the MLP's intermediate tensors and their activation-function temporaries); scaled-dot-product
    /// attention keeps no (T, T) probabilities for the backward. With gradient checkpointing only each layer's input stays, plus one
    /// layer's activations during its recomputation. Logits: (rows, T, V) fp32 three times (logits, the fp32 chunk
    /// copies, their gradient), or one chunk of positions (across rows) with chunked log-probs. Calibrated on measured peaks
    /// (full DPO: GPT-2 124M at 2 × (64 + 64) tokens 3.7 GB, at 4 × (128 + 128) 6.4 GB; Qwen2.5-0.5B at 2 × (128 + 128)
    /// 16.6 GB): within 7% of each.
    /// </remarks>
    public static MemoryEstimate Estimate(MemoryPlan plan)
    {
        ArgumentNullException.ThrowIfNull(plan);
        var c = plan.Config;
        long tokens = (long)plan.Rows * plan.SequenceLength;
        long perLayerToken = 4L * ((14L * c.HiddenSize) + (5L * c.IntermediateSize));
        long layers = c.NumLayers;
        long activations = plan.GradientCheckpointing
            ? (layers * tokens * c.HiddenSize * 4L) + (tokens * perLayerToken)
            : layers * tokens * perLayerToken;
        // Chunked log-probs gather the positions of every row into one list and run the lm_head over LogitChunk of them at a time.
        long logitPositions = plan.ChunkedLogProbs ? Math.Min(plan.LogitChunk, tokens) : tokens;
        activations += 3L * logitPositions * c.VocabSize * 4L;

        long adapters = plan.TrainableParameters < plan.Parameters ? plan.TrainableParameters : 0;
        return new MemoryEstimate(
            Weights: (plan.Parameters * plan.WeightBytes) + (adapters * 4L),
            Gradients: plan.TrainableParameters * 4L,
            OptimizerState: plan.TrainableParameters * 8L,
            Reference: plan.ReferenceCopy ? plan.Parameters * plan.ReferenceBytes : 0,
            Activations: activations,
            Runtime: RuntimeBytes);
    }

    /// <summary>Parameters of a model of <paramref name="config"/>, counted on the meta device (nothing allocated).</summary>
    public static long CountParameters(ModelConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        using var model = ModelLoader.Build(config, META);
        return model.parameters().Sum(p => p.numel());
    }

    /// <summary>
    /// The flags that would shrink <paramref name="plan"/>, each with the estimate it would give: LoRA, gradient
    /// checkpointing, chunked log-probs, no reference copy, bf16 frozen weights, half the batch, half the length.
    /// </summary>
    /// <param name="plan">The run's plan.</param>
    /// <param name="batchFlag">The flag of the batch size (<c>--per-device-train-batch-size</c>, bench's <c>--pairs</c>).</param>
    /// <param name="lengthFlag">The flag(s) of the lengths (<c>--max-length</c>, bench's <c>--prompt-len / --completion-len</c>).</param>
    /// <param name="referenceFlag">The flag that drops the reference copy (<c>--precompute-ref-log-probs</c>, bench's <c>--cached-reference</c>).</param>
    /// <param name="loraFlag">The flag that turns LoRA on.</param>
    public static IReadOnlyList<string> Fixes(MemoryPlan plan, string batchFlag, string lengthFlag, string referenceFlag = "--precompute-ref-log-probs", string loraFlag = "--use-peft")
    {
        ArgumentNullException.ThrowIfNull(plan);
        var fixes = new List<(string Flag, MemoryPlan Plan)>();
        bool lora = plan.TrainableParameters < plan.Parameters;
        if (!lora)
        {
            // LoRA at r 8 on the attention projections is well under 1% of the weights; 0.5% is the estimate.
            fixes.Add(($"{loraFlag} (LoRA; gradient checkpointing comes with it)", plan with { TrainableParameters = Math.Max(1, plan.Parameters / 200), ReferenceCopy = false, GradientCheckpointing = true }));
        }

        if (!plan.GradientCheckpointing)
        {
            fixes.Add(("--gradient-checkpointing", plan with { GradientCheckpointing = true }));
        }

        if (!plan.ChunkedLogProbs)
        {
            fixes.Add(("--logits-chunk-size 256", plan with { ChunkedLogProbs = true, LogitChunk = 256 }));
        }

        if (plan.ReferenceCopy)
        {
            fixes.Add((referenceFlag, plan with { ReferenceCopy = false }));
            if (plan.ReferenceBytes == 4)
            {
                fixes.Add(("--torch-dtype bfloat16 (a bf16 reference copy)", plan with { ReferenceBytes = 2 }));
            }
        }
        else if (lora && plan.WeightBytes == 4)
        {
            fixes.Add(("--torch-dtype bfloat16 (a bf16 frozen base)", plan with { WeightBytes = 2 }));
        }

        if (plan.Rows > 2)
        {
            fixes.Add(($"half the {batchFlag} (keep the effective batch with --gradient-accumulation-steps)", plan with { Rows = Math.Max(2, plan.Rows / 2) }));
        }

        if (plan.SequenceLength > 1)
        {
            fixes.Add(($"shorter {lengthFlag} (half: {plan.SequenceLength / 2} tokens per row)", plan with { SequenceLength = Math.Max(1, plan.SequenceLength / 2) }));
        }

        return [.. fixes.Select(f => $"{f.Flag} → about {MemoryEstimate.Gb(Estimate(f.Plan).Total)}")];
    }

    /// <summary>
    /// Throws <see cref="DpoSharpException"/> when <paramref name="estimate"/> exceeds <paramref name="availableBytes"/>:
    /// the message gives the estimate, its parts and <paramref name="fixes"/> (the flags that would make it fit).
    /// Nothing happens when the available memory is unknown.
    /// </summary>
    public static void ThrowIfTooLarge(MemoryEstimate estimate, long? availableBytes, IReadOnlyList<string> fixes)
    {
        ArgumentNullException.ThrowIfNull(estimate);
        ArgumentNullException.ThrowIfNull(fixes);
        if (availableBytes is not long available || estimate.Total <= available)
        {
            return;
        }

        throw new DpoSharpException(
            $"this run needs about {estimate} but only {MemoryEstimate.Gb(available)} of memory is available (MemAvailable); it would be killed " +
            $"by the out-of-memory killer. To make it fit: {string.Join("; ", fixes)}.");
    }
}
