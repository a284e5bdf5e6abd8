using System.CommandLine;
using System.Globalization;
using DpoSharp.Charts;
using DpoSharp.Cli.Options;
using DpoSharp.Cli.Terminal;
using DpoSharp.Data;
using DpoSharp.Models;
using DpoSharp.Tokenization;
using DpoSharp.Training;
using DpoSharp.Training.Engine;
using Spectre.Console;

namespace DpoSharp.Cli.Commands;

/// <summary>
/// <c>dposharp sft --model DIR --dataset PATH --output-dir DIR [options]</c>: supervised fine-tuning (<see cref="SftTrainer"/>)
/// on prompt-completion data with a completion-only loss, or on language-modeling text. Its options are
/// <see cref="SftOptions"/> (TRL's <c>SFTConfig</c> names and defaults), from <c>--config</c> and/or kebab-case flags
/// (TRL's snake_case spellings accepted too). Like <c>train</c>, it refuses an output_dir holding an earlier run, reads
/// a data file or a dataset folder, and names bad rows as <c>row N (line L)</c>.
/// </summary>
public static class SftCommand
{
    /// <summary>Creates the command.</summary>
    public static Command Create()
    {
        var cmd = new Command("sft",
            "Supervised fine-tuning on prompt/completion data (completion-only loss) or text; TRL SFTConfig options (snake_case spellings such as " +
            "--learning_rate accepted too); writes an HF model, metrics.jsonl, TensorBoard events and charts.");
        var threads = new Option<int?>("--threads") { Description = "intra-op CPU threads (default: the physical cores, ÷ processes per machine under mpirun)", HelpName = "int" };
        var flags = new TrainingOptionFlags<SftOptions>(cmd, "YAML or JSON file of options (TRL SFTConfig names: learning_rate, max_length, …); flags override it.", threads);

        cmd.SetAction((parse, ct) =>
        {
            var console = DpoSharpCli.CreateConsole(parse.InvocationConfiguration.Output);

            // Under mpirun: one rank of a data-parallel run (MPI initialised; alone: nothing changes).
            using var launch = DataParallelLaunch.Start(parse.GetValue(threads));
            return Task.FromResult(launch.Run(
                () => Run(TrainingOptionFlags<SftOptions>.Build(flags.ConfigPath(parse), flags.GivenFlags(parse)), launch.Console(console), ct, launch),
                DpoSharpCli.Invocation?.Error ?? Console.Error));
        });
        return cmd;
    }

    /// <summary>Checks <paramref name="options"/> before any work: model and dataset set and present, every value
    /// valid, output_dir free of an earlier run (<see cref="RunFolder.ThrowIfEarlierRun"/>; only where
    /// <paramref name="ownsOutputDir"/>: rank 0 of a data-parallel run).</summary>
    public static void Check(SftOptions options, bool ownsOutputDir = true)
    {
        ArgumentNullException.ThrowIfNull(options);
        RequiredInputs.ThrowIfMissing(
            "sft",
            string.Empty,
            ("--model", options.Model, "the Hugging Face model directory with --model DIR"),
            ("--dataset", options.Dataset, "the prompt/completion data with --dataset PATH"));
        options.Validate();
        if (!Directory.Exists(options.Model))
        {
            throw new DpoSharpException($"model directory {options.Model} does not exist; give a Hugging Face model directory (config.json, *.safetensors, tokenizer.json).");
        }

        foreach (var (name, path) in new[] { ("dataset", options.Dataset), ("eval_dataset", options.EvalDataset) })
        {
            if (path is not null && !File.Exists(path) && !Directory.Exists(path))
            {
                throw new DpoSharpException($"{name} {path}: no such file or folder. Pass a .jsonl/.json/.parquet/.csv/.tsv file or a dataset folder.");
            }
        }

        if (ownsOutputDir)
        {
            RunFolder.ThrowIfEarlierRun(options, ("model", options.Model));
        }

        RunFolder.ThrowIfAdapterMissing(options);
    }

    /// <summary>Runs SFT as <paramref name="options"/> say; returns the exit code.</summary>
    public static int Run(SftOptions options, IAnsiConsole console, CancellationToken cancellationToken = default) => Run(options, console, cancellationToken, launch: null);

    /// <summary>Runs SFT as one rank of <paramref name="launch"/> (null: alone); returns the exit code.</summary>
    internal static int Run(SftOptions options, IAnsiConsole console, CancellationToken cancellationToken, DataParallelLaunch? launch)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(console);
        bool rank0 = launch?.IsRank0 ?? true;
        Check(options, ownsOutputDir: rank0);
        var device = DeviceOption.Resolve(options.Device);
        var rows = SftDataset.Load(options.Dataset!, options.DatasetTrainSplit, options.DatasetTextField);
        var eval = LoadEval(options);
        var tokenizer = HfTokenizer.Load(options.Model!);
        var trainData = SftDataset.Tokenize(rows, tokenizer, options.MaxLength, options.CompletionOnlyLoss);
        var evalData = eval is null ? null : SftDataset.Tokenize(eval, tokenizer, options.MaxLength, options.CompletionOnlyLoss);
        int longest = trainData.Concat(evalData ?? []).Select(t => t.PromptIds.Length + t.CompletionIds.Length).DefaultIfEmpty(1).Max();
        int rowsPerForward = Math.Max(options.PerDeviceTrainBatchSize, evalData is null ? 0 : options.PerDeviceEvalBatchSize);
        MemoryPreflight.Check(console, options.Model!, options, rowsPerForward, longest, reference: false, device);
        using var model = ModelLoader.Load(options.Model!, device, options.TrainsAdapters ? options.Memory.TorchScalarType : TorchSharp.torch.ScalarType.Float32);
        using var trainer = new SftTrainer(model, options, trainData, SftTrainer.PadTokenId(tokenizer), evalData)
        {
            TokenizerFilesSource = options.Model,
            MetricSinkFactories = { ["png"] = PngChartSink.Factory },
        };
        launch?.Attach(trainer);
        console.MarkupLine($"dposharp sft: {Markup.Escape(options.Model!)} on {Markup.Escape(options.Dataset!)} ({rows.Count} rows) → {Markup.Escape(Path.GetFullPath(options.OutputDir))}; {trainer.TotalSteps} steps ({device})");
        TrainingProgress.WriteParameters(console, model);
        if (rank0)
        {
            RunFolder.DeleteEarlierCheckpoints(options);
            WriteConfigAfterFirstStep(trainer, options);
        }
        TrainOutput result;
        try
        {
            result = Train(trainer, options, console, cancellationToken);
        }
        catch (TrainingInterruptedException e)
        {
            return DpoSharpCli.WriteInterrupted(ResumeMessages.Interrupted(e, DpoSharpCli.Invocation?.Arguments, "sft", options.ResumeFromCheckpoint));
        }

        console.MarkupLine($"done: {result.GlobalStep} steps in {result.Seconds.ToString("F1", CultureInfo.InvariantCulture)} s, mean loss {result.TrainingLoss.ToString("F4", CultureInfo.InvariantCulture)}; model saved in {Markup.Escape(Path.GetFullPath(options.OutputDir))}");
        return 0;
    }

    /// <summary>The run's options go next to its checkpoints once the first step is done (as <c>train</c>): a run
    /// refused before that leaves the config of the run already in output_dir alone.</summary>
    private static void WriteConfigAfterFirstStep(SftTrainer trainer, SftOptions options)
    {
        bool written = false;
        trainer.StepCompleted += (_, _) =>
        {
            if (!written)
            {
                written = true;
                Directory.CreateDirectory(options.OutputDir);
                File.WriteAllText(Path.Combine(options.OutputDir, "dposharp_config.yaml"), OptionBinder.ToYaml(options));
            }
        };
    }

    /// <summary>Evaluation rows: eval_dataset, else (with an eval_strategy) the test split of a dataset folder.</summary>
    private static IReadOnlyList<PromptCompletion>? LoadEval(SftOptions o)
    {
        if (o.EvalDataset is { } path)
        {
            var split = Directory.Exists(path) && PreferenceDatasetLoader.FindSplits(path).ContainsKey(o.DatasetTestSplit) ? o.DatasetTestSplit : null;
            return SftDataset.Load(path, split, o.DatasetTextField);
        }

        if (o.EvalStrategy == EvalStrategy.No)
        {
            return null;
        }

        if (Directory.Exists(o.Dataset) && PreferenceDatasetLoader.FindSplits(o.Dataset!).ContainsKey(o.DatasetTestSplit))
        {
            return SftDataset.Load(o.Dataset!, o.DatasetTestSplit, o.DatasetTextField);
        }

        throw new DpoSharpException($"eval_strategy is '{OptionValues.Name(o.EvalStrategy)}' but there is no evaluation data: set eval_dataset, give a dataset folder with a '{o.DatasetTestSplit}' split, or set eval_strategy to no.");
    }

    /// <summary>Trains with the console display (progress, metric lines, resume notice; none with report_to none).
    /// Ctrl-C (<paramref name="cancellationToken"/>) stops after the current step with a checkpoint of it.</summary>
    private static TrainOutput Train(SftTrainer trainer, SftOptions options, IAnsiConsole console, CancellationToken cancellationToken)
    {
        trainer.CheckpointOnCancel = true;
        var display = new TrainingDisplay("sft", "samples/s", e => Line(e, trainer.TotalSteps), options.EffectiveReportTo.Contains(ReportTarget.Console));
        return TrainingProgress.Run(console, trainer.Loop, display, cancellationToken, () => trainer.Train(cancellationToken));
    }

    private static string Line(TrainerLogEntry e, int total)
    {
        string V(string k, string f) => e.Metrics.TryGetValue(k, out var v) ? v.ToString(f, CultureInfo.InvariantCulture) : "-";
        return e.Metrics.ContainsKey("eval_loss")
            ? $"eval step {e.Step}/{total}  loss {V("eval_loss", "F4")}  token acc {V("eval_mean_token_accuracy", "F3")}"
            : $"step {e.Step}/{total}  loss {V("loss", "F4")}  token acc {V("mean_token_accuracy", "F3")}  lr {V("learning_rate", "G3")}";
    }
}
