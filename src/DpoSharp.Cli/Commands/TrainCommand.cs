using System.CommandLine;
using System.Diagnostics;
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
using TorchSharp;

namespace DpoSharp.Cli.Commands;

/// <summary>
/// <c>dposharp train --config run.yaml [--option value …]</c>: a DPO run from a YAML/JSON config with every option
/// also a kebab-case flag, or TRL's snake_case one (a flag overrides the file; an option not typed keeps the file's
/// value). With no options, or only <see cref="DemoOptionNames"/> and <c>--threads</c>, it runs the built-in demo. Shows a live progress bar with ETA and the key metrics, writes
/// metrics.jsonl / TensorBoard events / PNG charts (report_to), checkpoints, and the final model in output_dir.
/// </summary>
public static class TrainCommand
{
    /// <summary>The options that, alone, still run the built-in demo (with <c>--threads</c>, a flag of the command).</summary>
    public static IReadOnlyList<string> DemoOptionNames { get; } = ["output_dir", "seed", "device"];

    public static Command Create()
    {
        var cmd = new Command("train",
            "Train a causal LM with DPO (or another preference loss) from a config file and/or flags (TRL's snake_case spellings such as " +
            "--learning_rate are accepted too). With no options, or only --output-dir/--seed/--device/--threads, runs the built-in demo.");
        var threads = new Option<int?>("--threads") { Description = "intra-op CPU threads (default: the physical cores, ÷ processes per machine under mpirun; the demo: 1)", HelpName = "int" };
        var flags = new TrainingOptionFlags<DpoOptions>(cmd, "YAML or JSON file of options (TRL names: beta, learning_rate, …); flags override it.", threads);

        cmd.SetAction((parse, cancellationToken) =>
        {
            var configPath = flags.ConfigPath(parse);
            var given = flags.GivenFlags(parse);
            var threadCount = parse.GetValue(threads);
            var console = DpoSharpCli.CreateConsole(parse.InvocationConfiguration.Output);
            if (IsDemoRequest(configPath, given))
            {
                return Task.FromResult(RunDemo(given, threadCount, console, cancellationToken));
            }

            // Under mpirun: one rank of a data-parallel run (MPI initialised; alone: nothing changes).
            using var launch = DataParallelLaunch.Start(threadCount);
            return Task.FromResult(launch.Run(
                () =>
                {
                    var options = TrainingOptionFlags<DpoOptions>.Build(configPath, given);
                    ThrowIfModelOrDatasetMissing(options);
                    options.Validate();
                    if (launch.IsRank0)
                    {
                        ThrowIfEarlierRunInOutputDir(options); // rank 0 owns output_dir (and soon its run lock)
                    }

                    return RunValidated(options, launch.Console(console), cancellationToken, launch);
                },
                DpoSharpCli.Invocation?.Error ?? Console.Error));
        });
        return cmd;
    }

    /// <summary>
    /// <c>dposharp train</c> runs the built-in demo only with no config file and no options besides
    /// <see cref="DemoOptionNames"/> (and <c>--threads</c>); any other option means a real run.
    /// </summary>
    public static bool IsDemoRequest(string? configPath, IEnumerable<KeyValuePair<string, string?>> givenFlags)
    {
        ArgumentNullException.ThrowIfNull(givenFlags);
        return configPath is null && givenFlags.All(f => DemoOptionNames.Contains(f.Key));
    }

    /// <summary>A real run (not the demo) needs a model and a dataset: throws <see cref="DpoSharpException"/> naming
    /// what is missing, before anything is checked or written.</summary>
    public static void ThrowIfModelOrDatasetMissing(DpoOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        RequiredInputs.ThrowIfMissing(
            "train",
            " `dposharp train` runs the built-in demo only with no options, or with only --output-dir, --seed, --device, --threads.",
            ("--model", options.Model, "the Hugging Face model directory with --model DIR"),
            ("--dataset", options.Dataset, "the preference data with --dataset PATH"));
    }

    /// <summary>The demo, with output_dir, seed and device from the train flags (<paramref name="givenFlags"/>) and
    /// <c>--threads</c>.</summary>
    private static int RunDemo(IReadOnlyList<KeyValuePair<string, string?>> givenFlags, int? threads, IAnsiConsole console, CancellationToken cancellationToken)
    {
        var train = TrainingOptionFlags<DpoOptions>.Build(null, givenFlags);
        train.Validate();
        var demo = new DpoSharp.Demo.DemoOptions
        {
            OutputDir = givenFlags.Any(f => f.Key == "output_dir") ? train.OutputDir : DemoCommand.DefaultOutputDir,
            Seed = train.Seed,
            Device = DeviceOption.ResolveName(train.Device),
        };
        if (threads is int n)
        {
            demo.Threads = n;
        }

        return DemoCommand.Run(demo, console, cancellationToken);
    }

    /// <summary>
    /// Refuses a fresh run into an output_dir that holds an earlier run (<see cref="RunFolder.ThrowIfEarlierRun"/>, the
    /// rule <c>sft</c> shares), or that is the model or reference model directory.
    /// </summary>
    public static void ThrowIfEarlierRunInOutputDir(DpoOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        RunFolder.ThrowIfEarlierRun(options, ("model", options.Model), ("ref_model", options.RefModel));
    }

    /// <summary>With <c>overwrite_output_dir</c> on a fresh run: deletes the earlier run's checkpoints (called once
    /// the model and data have loaded, so a run that fails before training deletes nothing).</summary>
    private static void DeleteEarlierCheckpoints(DpoOptions options) => RunFolder.DeleteEarlierCheckpoints(options);

    /// <summary>Options from the config file (if any) with the flag overrides applied in order. Not yet validated.</summary>
    public static DpoOptions BuildOptions(string? configPath, IEnumerable<KeyValuePair<string, string?>> overrides) =>
        TrainingOptionFlags<DpoOptions>.Build(configPath, overrides);

    /// <summary>Runs a training job described by <paramref name="options"/>; returns the exit code.</summary>
    public static int Run(DpoOptions options, IAnsiConsole console, CancellationToken cancellationToken = default)
    {
        options.Validate();
        return RunValidated(options, console, cancellationToken);
    }

    /// <summary>Runs a training job whose options were validated already (the trainer checks them again as the
    /// library's entry point).</summary>
    private static int RunValidated(DpoOptions options, IAnsiConsole console, CancellationToken cancellationToken, DataParallelLaunch? launch = null)
    {
        if (options.Model is null)
        {
            throw new DpoSharpException("model is not set: give the Hugging Face model directory with --model DIR or 'model:' in the config.");
        }

        if (options.Dataset is null)
        {
            throw new DpoSharpException("dataset is not set: give the preference data with --dataset PATH or 'dataset:' in the config.");
        }

        foreach (var (name, dir) in new[] { ("model", options.Model), ("ref_model", options.RefModel) })
        {
            if (dir is not null && !Directory.Exists(dir))
            {
                throw new DpoSharpException($"{name} directory {dir} does not exist; give a Hugging Face model directory (config.json, *.safetensors, tokenizer.json), " +
                    "e.g. downloaded with `huggingface-cli download microsoft/phi-2 --local-dir ./phi-2`.");
            }
        }

        RunFolder.ThrowIfAdapterMissing(options);

        foreach (var (name, path) in new[] { ("dataset", options.Dataset), ("eval_dataset", options.EvalDataset) })
        {
            if (path is not null && !File.Exists(path) && !Directory.Exists(path))
            {
                throw new DpoSharpException($"{name} {path}: no such file or folder. Pass a .jsonl/.json/.parquet/.csv/.tsv file or a dataset folder.");
            }
        }

        if (options.Algorithm == TrainingAlgorithm.Kto)
        {
            return KtoTrainRun.Run(options, console, cancellationToken, launch);
        }

        var device = DeviceOption.Resolve(options.Device);
        var wall = Stopwatch.StartNew();
        console.MarkupLine($"dposharp train: {Markup.Escape(options.Model)} on {Markup.Escape(options.Dataset)} → {Markup.Escape(Path.GetFullPath(options.OutputDir))} ({device})");

        var train = PreferenceDatasetLoader.Load(options.Dataset, options.ToDatasetOptions());
        var eval = LoadEval(options, PreferenceDatasetLoader.Load);
        var tokenizer = HfTokenizer.Load(options.Model);
        var data = PreparedPreferenceData.Create(options.ToTokenizationOptions(), tokenizer, train, eval);
        int longest = data.Train.Pairs.Concat(data.Eval?.Pairs ?? []).Max(p => p.LongestRow);
        int pairsPerForward = Math.Max(options.PerDeviceTrainBatchSize, data.Eval is null ? 0 : options.PerDeviceEvalBatchSize);
        bool keepsReference = options.Objective.NeedsReference && !options.PrecomputeRefLogProbs && (options.RefModel is not null || !options.TrainsAdapters);
        MemoryPreflight.Check(console, options.Model, options, 2 * pairsPerForward, longest, keepsReference, device);

        // Frozen weights in torch_dtype: a LoRA run's base and the reference model (the trained weights stay fp32).
        var frozen = options.Memory.TorchScalarType;
        using var model = ModelLoader.Load(options.Model, device, options.TrainsAdapters ? frozen : torch.ScalarType.Float32);
        using var refModel = options.RefModel is null ? null : ModelLoader.Load(options.RefModel, device, frozen);
        using var trainer = new DpoTrainer(model, refModel, options, data)
        {
            TokenizerFilesSource = options.Model,
            MetricSinkFactories = { ["png"] = PngChartSink.Factory },
        };
        launch?.Attach(trainer);
        var stats = trainer.TrainTokenization!.Stats;
        console.MarkupLine($"pairs: {stats.Kept} of {stats.Rows} kept{(stats.DroppedCount > 0 ? $" ({stats.DroppedCount} dropped)" : "")}; " +
            $"{trainer.TotalSteps} steps ({trainer.StepsPerEpoch} per epoch); loss {Markup.Escape(trainer.Loss.Name)}, β {options.Beta.ToString(CultureInfo.InvariantCulture)}");
        TrainingProgress.WriteParameters(console, model, ReferenceDescription(options));

        if (launch?.IsRank0 ?? true)
        {
            DeleteEarlierCheckpoints(options);
        }

        // The run's options go next to its checkpoints once the first step is done: a run refused before that (a
        // checkpoint that does not match, a bad model) leaves the config of the run already in output_dir alone.
        bool configWritten = !(launch?.IsRank0 ?? true); // only rank 0 writes files
        void WriteConfig()
        {
            if (!configWritten)
            {
                configWritten = true;
                Directory.CreateDirectory(options.OutputDir);
                File.WriteAllText(Path.Combine(options.OutputDir, "dposharp_config.yaml"), OptionBinder.ToYaml(options));
            }
        }

        trainer.StepCompleted += (_, _) => WriteConfig();

        TrainOutput result;
        try
        {
            result = Train(trainer, options, console, cancellationToken);
        }
        catch (TrainingInterruptedException e)
        {
            return ReportInterrupted(e, options);
        }

        WriteConfig();
        WriteSummary(console, trainer, result, options, wall.Elapsed);
        return 0;
    }

    /// <summary>What a DPO run's reference log-probs come from, for the console.</summary>
    internal static string ReferenceDescription(DpoOptions options) =>
        !options.Objective.NeedsReference ? "none (reference-free)"
        : options.PrecomputeRefLogProbs ? "precomputed log-probs"
        : options.RefModel is { } dir ? dir
        : options.TrainsAdapters ? "adapters disabled"
        : "a frozen copy";

    /// <summary>Trains with the console display (progress, metric lines, resume notice; none with report_to none).
    /// Ctrl-C (<paramref name="cancellationToken"/>) stops after the current step with a checkpoint of it.</summary>
    private static TrainOutput Train(DpoTrainer trainer, DpoOptions options, IAnsiConsole console, CancellationToken cancellationToken)
    {
        trainer.CheckpointOnCancel = true;
        var display = new TrainingDisplay("train", "pairs/s", e => FormatLine(e, trainer.TotalSteps), options.EffectiveReportTo.Contains(ReportTarget.Console));
        return TrainingProgress.Run(console, trainer.Loop, display, cancellationToken, () => trainer.Train(cancellationToken: cancellationToken));
    }

    /// <summary>Prints where the interrupted run stopped and the command that continues it; returns 130.</summary>
    private static int ReportInterrupted(TrainingInterruptedException e, DpoOptions options) =>
        DpoSharpCli.WriteInterrupted(ResumeMessages.Interrupted(e, DpoSharpCli.Invocation?.Arguments, "train", options.ResumeFromCheckpoint));

    /// <summary>One console line: step, loss, accuracy, margin (train or eval).</summary>
    public static string FormatLine(TrainerLogEntry e, int totalSteps)
    {
        string prefix = e.Metrics.ContainsKey("eval_loss") ? "eval_" : "";
        string V(string name, string format) => e.Metrics.TryGetValue(prefix + name, out var v) ? v.ToString(format, CultureInfo.InvariantCulture) : "-";
        var line = $"{(prefix.Length > 0 ? "eval " : "")}step {e.Step}/{totalSteps}  loss {V("loss", "F4")}  acc {V("rewards/accuracies", "F3")}  margin {V("rewards/margins", "F4")}";
        if (prefix.Length == 0)
        {
            line += $"  lr {V("learning_rate", "G3")}  {V("pairs_per_second", "F1")} pairs/s";
        }

        return line;
    }

    private static void WriteSummary(IAnsiConsole console, DpoTrainer trainer, TrainOutput result, DpoOptions options, TimeSpan elapsed)
    {
        var table = new Table().AddColumn("metric").AddColumn("value");
        foreach (var (k, v) in result.LastLog)
        {
            table.AddRow(Markup.Escape(k), v.ToString("G6", CultureInfo.InvariantCulture));
        }

        var lastEval = trainer.State.LogHistory.LastOrDefault(e => e.Metrics.ContainsKey("eval_loss"));
        if (lastEval is not null)
        {
            foreach (var (k, v) in lastEval.Metrics.Where(kv => kv.Key.StartsWith("eval_", StringComparison.Ordinal)))
            {
                table.AddRow(Markup.Escape(k), v.ToString("G6", CultureInfo.InvariantCulture));
            }
        }

        console.Write(table);
        console.MarkupLine($"done: {result.GlobalStep} steps in {elapsed.TotalSeconds.ToString("F1", CultureInfo.InvariantCulture)} s; model saved in {Markup.Escape(Path.GetFullPath(options.OutputDir))}");
    }

    /// <summary>The evaluation data of a run (preference pairs, or KTO's unpaired rows, as <paramref name="load"/> reads
    /// them): eval_dataset, else the dataset folder's test split; none with eval_strategy no.</summary>
    internal static T? LoadEval<T>(DpoOptions o, Func<string, DatasetOptions?, T> load)
        where T : class
    {
        if (o.EvalDataset is { } path)
        {
            var options = o.ToDatasetOptions();
            options.Split = Directory.Exists(path) && PreferenceDatasetLoader.FindSplits(path).ContainsKey(o.DatasetTestSplit) ? o.DatasetTestSplit : null;
            return load(path, options);
        }

        if (o.EvalStrategy == EvalStrategy.No)
        {
            return null;
        }

        if (Directory.Exists(o.Dataset) && PreferenceDatasetLoader.FindSplits(o.Dataset!).ContainsKey(o.DatasetTestSplit))
        {
            return load(o.Dataset!, o.ToDatasetOptions(o.DatasetTestSplit));
        }

        throw new DpoSharpException($"eval_strategy is '{OptionValues.Name(o.EvalStrategy)}' but there is no evaluation data: set eval_dataset, give a dataset folder with a '{o.DatasetTestSplit}' split, or set eval_strategy to no.");
    }
}
