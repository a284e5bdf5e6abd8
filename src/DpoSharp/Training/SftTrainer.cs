using System.Diagnostics;
using DpoSharp.Data;
using DpoSharp.Losses;
using DpoSharp.Models;
using DpoSharp.Tokenization;
using DpoSharp.Training.Metrics;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DpoSharp.Training;

/// <summary>
/// Supervised fine-tuning on prompt-completion data with a completion-only loss (TRL's <c>SFTTrainer</c> with
/// <c>completion_only_loss</c>): the mean, over every completion token of the optimizer step, of −log p(token).
/// Shares the DPO trainer's machinery and option names (<see cref="DpoOptions"/>: learning_rate, batch size, gradient
/// accumulation, epochs / max_steps, lr schedule with warmup, max_grad_norm, weight decay on 2-D weights only, seed,
/// logging_steps, eval, report_to sinks, output_dir); preference-only options (beta, loss_type, …) are ignored.
/// Logs <c>loss</c>, <c>grad_norm</c>, <c>learning_rate</c>, <c>epoch</c>, <c>num_tokens</c>,
/// <c>mean_token_accuracy</c> (and <c>eval_</c> versions) and saves the final model as an HF directory in output_dir.
/// </summary>
public sealed class SftTrainer : IDisposable
{
    private readonly IReadOnlyList<TokenizedCompletion> _train;
    private readonly IReadOnlyList<TokenizedCompletion>? _eval;
    private readonly int _padTokenId;
    private readonly List<Parameter> _trainable;
    private AdamW? _optimizer;
    private bool _disposed;

    /// <summary>Creates a trainer over tokenized examples.</summary>
    /// <param name="model">The model; trained in place.</param>
    /// <param name="args">Options (validated here).</param>
    /// <param name="trainDataset">Training examples.</param>
    /// <param name="padTokenId">Pad id for batches.</param>
    /// <param name="evalDataset">Optional evaluation examples.</param>
    public SftTrainer(ICausalLM model, DpoOptions args, IReadOnlyList<TokenizedCompletion> trainDataset, int padTokenId, IReadOnlyList<TokenizedCompletion>? evalDataset = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(trainDataset);
        args.Validate();
        if (trainDataset.Count == 0)
        {
            throw new DpoSharpException("the SFT training dataset is empty: give at least one prompt/completion row.");
        }

        Model = model;
        Args = args;
        _train = trainDataset;
        _eval = evalDataset is { Count: > 0 } ? evalDataset : null;
        _padTokenId = padTokenId;
        _trainable = [.. model.Module.parameters().Where(p => p.requires_grad)];
        if (_trainable.Count == 0)
        {
            throw new DpoSharpException("the model has no trainable parameters (requires_grad is false everywhere).");
        }

        Sampler = new RandomBatchSampler(_train.Count, args.PerDeviceTrainBatchSize, (ulong)args.Seed);
    }

    /// <summary>Creates a trainer over raw rows, tokenized with <paramref name="tokenizer"/> (prompt + BOS when the
    /// tokenizer adds one, completion + EOS, cut to <see cref="DpoOptions.MaxLength"/>).</summary>
    public SftTrainer(ICausalLM model, DpoOptions args, IReadOnlyList<PromptCompletion> trainDataset, ITokenizer tokenizer, IReadOnlyList<PromptCompletion>? evalDataset = null)
        : this(
            model,
            args,
            SftDataset.Tokenize(trainDataset, tokenizer, args.MaxLength),
            tokenizer.PadTokenId ?? tokenizer.EosTokenId ?? throw new DpoSharpException("the tokenizer has neither a pad nor an EOS token; add pad_token to tokenizer_config.json."),
            evalDataset is null ? null : SftDataset.Tokenize(evalDataset, tokenizer, args.MaxLength))
    {
    }

    /// <summary>The model being trained.</summary>
    public ICausalLM Model { get; }

    /// <summary>The options.</summary>
    public DpoOptions Args { get; }

    /// <summary>The seeded batch sampler.</summary>
    public RandomBatchSampler Sampler { get; }

    /// <summary>Optimizer steps per epoch.</summary>
    public int StepsPerEpoch => (Sampler.BatchesPerEpoch + Args.GradientAccumulationSteps - 1) / Args.GradientAccumulationSteps;

    /// <summary>Optimizer steps of the run: max_steps, else epochs × steps per epoch.</summary>
    public int TotalSteps => Args.MaxSteps > 0 ? Args.MaxSteps : Math.Max(1, (int)Math.Ceiling(Args.NumTrainEpochs * StepsPerEpoch));

    /// <summary>Every logged record (training and eval), in order.</summary>
    public List<TrainerLogEntry> LogHistory { get; } = [];

    /// <summary>Tokenizer files to copy next to the saved model (a directory), or null.</summary>
    public string? TokenizerFilesSource { get; set; }

    /// <summary>Extra sink fed every logged record (in addition to the report_to file sinks in output_dir).</summary>
    public IMetricSink? MetricSink { get; set; }

    /// <summary>Factories of metric sinks beyond the built-in jsonl/tensorboard ones, by report_to name (e.g. "png" → PngChartSink.Factory).</summary>
    public IDictionary<string, MetricSinkFactory> MetricSinkFactories { get; } = new Dictionary<string, MetricSinkFactory>(StringComparer.Ordinal);

    /// <summary>Raised on every logging step.</summary>
    public event Action<TrainerLogEntry>? Logged;

    /// <summary>Raised after every optimizer step with the step and the total steps.</summary>
    public event Action<int, int>? StepCompleted;

    /// <summary>Trains, logs, evaluates (eval_strategy steps/epoch), and saves the final model in output_dir.</summary>
    public TrainOutput Train(CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var wall = Stopwatch.StartNew();
        int total = TotalSteps;
        var schedule = LrSchedule.FromOptions(Args, total);
        torch.random.manual_seed(Args.Seed);
        _optimizer?.Dispose();
        _optimizer = CreateOptimizer();
        bool writes = Args.OutputDir.Length > 0;
        using var fileSinks = writes ? CompositeMetricSink.FromOptions(Args, factories: MetricSinkFactories.AsReadOnly()) : new CompositeMetricSink([]);
        if (writes)
        {
            Directory.CreateDirectory(Args.OutputDir);
        }

        if (Args.DisableDropout)
        {
            Model.Module.eval();
        }
        else
        {
            Model.Module.train();
        }

        var device = Model.Device;
        int epoch = 0, batchInEpoch = 0;
        var batches = Sampler.EpochBatches(0);
        double lossSum = 0, windowLoss = 0, windowAcc = 0;
        long windowTokens = 0, numTokens = 0;
        int windowSteps = 0;
        double gradNorm = 0;
        IReadOnlyDictionary<string, double> lastLog = new Dictionary<string, double>();
        var window = Stopwatch.StartNew();
        for (int step = 0; step < total; step++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var micro = new List<int[]>();
            while (micro.Count < Args.GradientAccumulationSteps)
            {
                if (batchInEpoch >= batches.Count)
                {
                    if (micro.Count > 0)
                    {
                        break;
                    }

                    epoch++;
                    batchInEpoch = 0;
                    batches = Sampler.EpochBatches(epoch);
                }

                micro.Add(batches[batchInEpoch++]);
            }

            double lr = schedule.LearningRate(step);
            foreach (var g in _optimizer.ParamGroups)
            {
                g.LearningRate = lr;
            }

            using (var scope = NewDisposeScope())
            {
                // Token-weighted mean over the whole optimizer step: count completion tokens first.
                long stepTokens = micro.Sum(idx => idx.Sum(i => (long)_train[i].CompletionIds.Length));
                var stepLoss = zeros(1, device: device).squeeze();
                var stepCorrect = zeros(1, device: device).squeeze();
                foreach (var idx in micro)
                {
                    using var microScope = NewDisposeScope();
                    var (nllSum, correct, _) = ForwardBatch(_train, idx, device);
                    var scaled = nllSum / stepTokens;
                    scaled.backward();
                    stepLoss.add_(scaled.detach());
                    stepCorrect.add_(correct);
                    numTokens += idx.Sum(i => (long)(_train[i].PromptIds.Length + _train[i].CompletionIds.Length));
                }

                using (no_grad())
                {
                    var norm = ClipGradNorm(Args.MaxGradNorm);
                    AdamWStepper.Step(_optimizer);
                    _optimizer.zero_grad();
                    bool logNow = (step + 1) % Args.LoggingSteps == 0 || step + 1 == total;
                    // Scalars are read once per step only on logging steps' window (loss is needed for the mean).
                    double l = stepLoss.item<float>();
                    lossSum += l;
                    windowLoss += l;
                    windowAcc += stepCorrect.item<float>();
                    windowTokens += stepTokens;
                    windowSteps++;
                    if (logNow)
                    {
                        gradNorm = norm.item<float>();
                    }
                }
            }

            StepCompleted?.Invoke(step + 1, total);
            double epochValue = (double)(step + 1) / StepsPerEpoch;
            if ((step + 1) % Args.LoggingSteps == 0 || step + 1 == total)
            {
                double secs = Math.Max(window.Elapsed.TotalSeconds, 1e-9);
                var m = new Dictionary<string, double>
                {
                    ["loss"] = windowLoss / windowSteps,
                    ["grad_norm"] = gradNorm,
                    ["learning_rate"] = schedule.LearningRate(step + 1),
                    ["epoch"] = epochValue,
                    ["num_tokens"] = numTokens,
                    ["mean_token_accuracy"] = windowAcc / Math.Max(1, windowTokens),
                    ["tokens_per_second"] = windowTokens / secs,
                };
                lastLog = m;
                Log(step + 1, m, fileSinks);
                windowLoss = windowAcc = 0;
                windowTokens = 0;
                windowSteps = 0;
                window.Restart();
            }

            bool epochEnd = batchInEpoch >= batches.Count;
            bool evaluate = _eval is not null && (Args.EvalStrategy switch
            {
                "steps" => (step + 1) % Args.EffectiveEvalSteps == 0,
                "epoch" => epochEnd,
                _ => false,
            });
            if (evaluate)
            {
                var e = new Dictionary<string, double>(Evaluate()) { ["epoch"] = epochValue };
                Log(step + 1, e, fileSinks);
            }
        }

        fileSinks.Close();
        if (writes)
        {
            TrainerCheckpoint.SaveModelDirectory(Model, Args.OutputDir, TokenizerFilesSource);
        }

        return new TrainOutput(total, lossSum / total, wall.Elapsed.TotalSeconds, lastLog);
    }

    /// <summary>Evaluation: <c>eval_loss</c> (mean completion-token NLL) and <c>eval_mean_token_accuracy</c>; empty without eval data.</summary>
    public IReadOnlyDictionary<string, double> Evaluate()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_eval is null)
        {
            return new Dictionary<string, double>();
        }

        bool wasTraining = Model.Module.training;
        Model.Module.eval();
        double nll = 0, correct = 0;
        long tokens = 0;
        try
        {
            using var _ = no_grad();
            for (int start = 0; start < _eval.Count; start += Args.PerDeviceEvalBatchSize)
            {
                using var scope = NewDisposeScope();
                var idx = Enumerable.Range(start, Math.Min(Args.PerDeviceEvalBatchSize, _eval.Count - start)).ToArray();
                var (s, c, n) = ForwardBatch(_eval, idx, Model.Device);
                nll += s.item<float>();
                correct += c.item<float>();
                tokens += n;
            }
        }
        finally
        {
            Model.Module.train(wasTraining);
        }

        return new Dictionary<string, double>
        {
            ["eval_loss"] = nll / Math.Max(1, tokens),
            ["eval_mean_token_accuracy"] = correct / Math.Max(1, tokens),
        };
    }

    /// <summary>Saves the model as an HF directory (config.json + safetensors + tokenizer files).</summary>
    public void SaveModel(string directory) => TrainerCheckpoint.SaveModelDirectory(Model, directory, TokenizerFilesSource);

    /// <summary>
    /// Collates <paramref name="indices"/> of <paramref name="data"/> into right-padded (B, T) int64 tensors on
    /// <paramref name="device"/>: input ids, attention mask, completion mask (1 on completion tokens), position ids.
    /// </summary>
    public static (Tensor InputIds, Tensor AttentionMask, Tensor CompletionMask, Tensor PositionIds) Collate(
        IReadOnlyList<TokenizedCompletion> data, IReadOnlyList<int> indices, int padTokenId, Device device)
    {
        int b = indices.Count;
        int t = indices.Max(i => data[i].PromptIds.Length + data[i].CompletionIds.Length);
        var ids = new long[b * t];
        var att = new long[b * t];
        var comp = new long[b * t];
        var pos = new long[b * t];
        for (int r = 0; r < b; r++)
        {
            var ex = data[indices[r]];
            int j = 0;
            foreach (var id in ex.PromptIds)
            {
                ids[(r * t) + j] = id;
                att[(r * t) + j] = 1;
                pos[(r * t) + j] = j;
                j++;
            }

            foreach (var id in ex.CompletionIds)
            {
                ids[(r * t) + j] = id;
                att[(r * t) + j] = 1;
                comp[(r * t) + j] = 1;
                pos[(r * t) + j] = j;
                j++;
            }

            for (; j < t; j++)
            {
                ids[(r * t) + j] = padTokenId;
                pos[(r * t) + j] = j;
            }
        }

        return (tensor(ids, [b, t], device: device), tensor(att, [b, t], device: device), tensor(comp, [b, t], device: device), tensor(pos, [b, t], device: device));
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        _optimizer?.Dispose();
    }

    private (Tensor NllSum, Tensor Correct, long Tokens) ForwardBatch(IReadOnlyList<TokenizedCompletion> data, int[] idx, Device device)
    {
        var (ids, att, comp, pos) = Collate(data, idx, _padTokenId, device);
        var logits = Model.Forward(ids, att, pos);                                // (B, T, V)
        var lp = SequenceLogProbs.Compute(logits, ids, comp);
        var nllSum = -lp.Sums.sum();
        Tensor correct;
        using (no_grad())
        {
            var pred = logits[.., ..^1].argmax(-1);                               // (B, T-1)
            var hit = pred.eq(ids[.., 1..]).logical_and(comp[.., 1..].to(ScalarType.Bool));
            correct = hit.to(ScalarType.Float32).sum();
        }

        long tokens = idx.Sum(i => (long)data[i].CompletionIds.Length);
        return (nllSum, correct, tokens);
    }

    private void Log(int step, IReadOnlyDictionary<string, double> metrics, IMetricSink sinks)
    {
        var entry = new TrainerLogEntry(step, metrics);
        LogHistory.Add(entry);
        sinks.Log(step, metrics);
        MetricSink?.Log(step, metrics);
        Logged?.Invoke(entry);
    }

    private Tensor ClipGradNorm(double maxNorm)
    {
        var grads = _trainable.Select(p => p.grad).Where(g => g is not null).Select(g => g!).ToList();
        if (grads.Count == 0)
        {
            return zeros(1, device: Model.Device).squeeze();
        }

        var total = stack(grads.Select(g => linalg.vector_norm(g)).ToArray()).norm();
        if (maxNorm > 0)
        {
            var coef = (maxNorm / (total + 1e-6)).clamp_max(1.0);
            foreach (var g in grads)
            {
                g.mul_(coef);
            }
        }

        return total;
    }

    private AdamW CreateOptimizer() => OptimizerFactory.CreateAdamW(_trainable, Args);
}
