using DpoSharp.Data;
using DpoSharp.Models;
using DpoSharp.Tokenization;
using DpoSharp.Training.Engine;
using DpoSharp.Training.Metrics;
using DpoSharp.Training.Objectives;
using static TorchSharp.torch;

namespace DpoSharp.Training;

/// <summary>
/// Supervised fine-tuning on prompt-completion data with a completion-only loss (TRL's <c>SFTTrainer</c> with
/// <c>completion_only_loss</c>): the mean, over every completion token of the optimizer step, of −log p(token).
/// A façade over <see cref="SftObjective"/> on the shared <see cref="TrainingLoop{TBatch}"/>, so it has everything
/// the loop gives: gradient accumulation, clipping, AdamW (weight decay on 2-D weights only), the lr schedule with
/// warmup, seed, logging_steps, eval cadence, report_to sinks, checkpoints with <c>save_total_limit</c>, exact resume,
/// rank sharding. Its options are <see cref="SftOptions"/> (TRL's <c>SFTConfig</c>); the <see cref="DpoOptions"/>
/// constructors run the same trainer on the SFT part of those options (preference-only ones are ignored).
/// Logs <c>loss</c>, <c>grad_norm</c>, <c>learning_rate</c>, <c>epoch</c>, <c>num_tokens</c>,
/// <c>mean_token_accuracy</c> (and <c>eval_</c> versions) and saves the final model as an HF directory in output_dir.
/// </summary>
public sealed class SftTrainer : TrainerBase<CompletionBatch>
{
    private readonly SftObjective _objective;
    private IMetricSink? _extraSink;

    /// <summary>Creates a trainer over tokenized examples.</summary>
    /// <param name="model">The model; trained in place.</param>
    /// <param name="args">Options (validated here).</param>
    /// <param name="trainDataset">Training examples.</param>
    /// <param name="padTokenId">Pad id for batches.</param>
    /// <param name="evalDataset">Optional evaluation examples.</param>
    public SftTrainer(ICausalLM model, SftOptions args, IReadOnlyList<TokenizedCompletion> trainDataset, int padTokenId, IReadOnlyList<TokenizedCompletion>? evalDataset = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(trainDataset);
        args.Validate();
        if (trainDataset.Count == 0)
        {
            throw new DpoSharpException("the SFT training dataset is empty: give at least one prompt/completion row.");
        }

        Args = args;
        TrainableModel.Prepare(model, args);
        var collator = new CompletionCollator(padTokenId);
        _objective = new SftObjective(model);
        var eval = evalDataset is { Count: > 0 } ? new CompletionBatchSource(evalDataset, collator) : null;
        Attach(new TrainingLoop<CompletionBatch>(model, _objective, new CompletionBatchSource(trainDataset, collator), eval, args));
    }

    /// <summary>Creates a trainer over raw rows, tokenized with <paramref name="tokenizer"/> (prompt + BOS when the
    /// tokenizer adds one, completion + EOS, cut to <see cref="SftOptions.MaxLength"/>; the loss on completion tokens
    /// only unless <see cref="SftOptions.CompletionOnlyLoss"/> is off).</summary>
    /// <param name="model">The model; trained in place.</param>
    /// <param name="args">Options (validated here).</param>
    /// <param name="trainDataset">Training rows.</param>
    /// <param name="tokenizer">The model's tokenizer.</param>
    /// <param name="evalDataset">Optional evaluation rows.</param>
    public SftTrainer(ICausalLM model, SftOptions args, IReadOnlyList<PromptCompletion> trainDataset, ITokenizer tokenizer, IReadOnlyList<PromptCompletion>? evalDataset = null)
        : this(
            model,
            args,
            SftDataset.Tokenize(trainDataset, tokenizer, args.MaxLength, args.CompletionOnlyLoss),
            PadTokenId(tokenizer),
            evalDataset is null ? null : SftDataset.Tokenize(evalDataset, tokenizer, args.MaxLength, args.CompletionOnlyLoss))
    {
    }

    /// <summary>Creates a trainer over tokenized examples with the SFT run <paramref name="args"/> describe
    /// (<see cref="SftOptions.From(DpoOptions)"/>: preference-only options are ignored).</summary>
    /// <param name="model">The model; trained in place.</param>
    /// <param name="args">Options (validated here).</param>
    /// <param name="trainDataset">Training examples.</param>
    /// <param name="padTokenId">Pad id for batches.</param>
    /// <param name="evalDataset">Optional evaluation examples.</param>
    public SftTrainer(ICausalLM model, DpoOptions args, IReadOnlyList<TokenizedCompletion> trainDataset, int padTokenId, IReadOnlyList<TokenizedCompletion>? evalDataset = null)
        : this(model, SftOptions.From(args ?? throw new ArgumentNullException(nameof(args))), trainDataset, padTokenId, evalDataset)
    {
    }

    /// <summary>Creates a trainer over raw rows with the SFT run <paramref name="args"/> describe
    /// (<see cref="SftOptions.From(DpoOptions)"/>: preference-only options are ignored).</summary>
    /// <param name="model">The model; trained in place.</param>
    /// <param name="args">Options (validated here).</param>
    /// <param name="trainDataset">Training rows.</param>
    /// <param name="tokenizer">The model's tokenizer.</param>
    /// <param name="evalDataset">Optional evaluation rows.</param>
    public SftTrainer(ICausalLM model, DpoOptions args, IReadOnlyList<PromptCompletion> trainDataset, ITokenizer tokenizer, IReadOnlyList<PromptCompletion>? evalDataset = null)
        : this(model, SftOptions.From(args ?? throw new ArgumentNullException(nameof(args))), trainDataset, tokenizer, evalDataset)
    {
    }

    /// <summary>The options.</summary>
    public SftOptions Args { get; }

    /// <summary>Every logged record (training and eval), in order.</summary>
    public List<TrainerLogEntry> LogHistory => State.LogHistory;

    /// <summary>Extra sink fed every logged record (in addition to the report_to file sinks in output_dir).</summary>
    public IMetricSink? MetricSink
    {
        get => _extraSink;
        set
        {
            if (_extraSink is not null)
            {
                Loop.AdditionalSinks.Remove(_extraSink);
            }

            _extraSink = value;
            if (value is not null)
            {
                Loop.AdditionalSinks.Add(value);
            }
        }
    }

    /// <summary>Trains, logs, evaluates (eval_strategy steps/epoch), checkpoints (save_steps), and saves the final
    /// model in output_dir.</summary>
    /// <param name="cancellationToken">Stops after the current optimizer step (with <see cref="TrainerBase{TBatch}.CheckpointOnCancel"/>:
    /// checkpoints it and throws <see cref="TrainingInterruptedException"/>).</param>
    public TrainOutput Train(CancellationToken cancellationToken = default) => Train(null, cancellationToken);

    /// <summary>Trains from a checkpoint (null: as the options say — <c>resume_from_checkpoint</c>, or the newest
    /// checkpoint in output_dir with <c>resume</c>).</summary>
    /// <param name="resumeFromCheckpoint">A checkpoint directory, or null.</param>
    /// <param name="cancellationToken">Stops after the current optimizer step (with <see cref="TrainerBase{TBatch}.CheckpointOnCancel"/>:
    /// checkpoints it and throws <see cref="TrainingInterruptedException"/>).</param>
    public TrainOutput Train(string? resumeFromCheckpoint, CancellationToken cancellationToken = default)
    {
        return RunLoop(resumeFromCheckpoint, cancellationToken);
    }

    /// <inheritdoc/>
    protected override void DisposeObjective() => _objective.Dispose();

    /// <summary>The id batches are padded with: the tokenizer's pad token, else its EOS token.</summary>
    /// <exception cref="DpoSharpException">The tokenizer has neither.</exception>
    public static int PadTokenId(ITokenizer tokenizer)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        return tokenizer.PadTokenId ?? tokenizer.EosTokenId ?? throw new DpoSharpException("the tokenizer has neither a pad nor an EOS token; add pad_token to tokenizer_config.json.");
    }

    /// <summary>
    /// Collates <paramref name="indices"/> of <paramref name="data"/> into right-padded (B, T) int64 tensors on
    /// <paramref name="device"/>: input ids, attention mask, completion mask (1 on completion tokens), position ids.
    /// </summary>
    public static (Tensor InputIds, Tensor AttentionMask, Tensor CompletionMask, Tensor PositionIds) Collate(
        IReadOnlyList<TokenizedCompletion> data, IReadOnlyList<int> indices, int padTokenId, Device device)
    {
        var b = new CompletionCollator(padTokenId).Collate(data, indices, device);
        return (b.InputIds, b.AttentionMask, b.CompletionMask, b.PositionIds);
    }

}
