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
/// <c>dposharp train --algorithm kto</c>: the KTO side of <see cref="TrainCommand"/> (options checked already). Reads
/// unpaired data (<see cref="UnpairedDatasetLoader"/>; preference pairs are unpaired), trains a <see cref="KtoTrainer"/>
/// with the same console display, config file, checkpoints and interruption handling as a DPO run.
/// </summary>
internal static class KtoTrainRun
{
    public static int Run(DpoOptions options, IAnsiConsole console, CancellationToken cancellationToken, DataParallelLaunch? launch = null)
    {
        var device = DeviceOption.Resolve(options.Device);
        var wall = Stopwatch.StartNew();
        console.MarkupLine($"dposharp train (kto): {Markup.Escape(options.Model!)} on {Markup.Escape(options.Dataset!)} → {Markup.Escape(Path.GetFullPath(options.OutputDir))} ({device})");

        var train = UnpairedDatasetLoader.Load(options.Dataset!, options.ToDatasetOptions());
        var eval = TrainCommand.LoadEval(options, UnpairedDatasetLoader.Load);
        var tokenizer = HfTokenizer.Load(options.Model!);
        var data = PreparedUnpairedData.Create(options.ToTokenizationOptions(), tokenizer, train, eval);
        int longestPrompt = data.Train.Concat(data.Eval ?? []).Max(e => e.PromptIds.Length);
        int longestCompletion = data.Train.Concat(data.Eval ?? []).Max(e => e.CompletionIds.Length);
        bool keepsReference = options.RefModel is not null || !options.TrainsAdapters;

        // Each batch runs its examples and as many mismatched KL rows.
        MemoryPreflight.Check(console, options.Model!, options, 2 * Math.Max(options.PerDeviceTrainBatchSize, options.PerDeviceEvalBatchSize), longestPrompt + longestCompletion, keepsReference, device);

        var frozen = options.Memory.TorchScalarType;
        using var model = ModelLoader.Load(options.Model!, device, options.TrainsAdapters ? frozen : torch.ScalarType.Float32);
        using var refModel = options.RefModel is null ? null : ModelLoader.Load(options.RefModel, device, frozen);
        using var trainer = new KtoTrainer(model, refModel, options, data)
        {
            TokenizerFilesSource = options.Model,
            MetricSinkFactories = { ["png"] = PngChartSink.Factory },
        };
        launch?.Attach(trainer);
        int desirable = data.Train.Count(e => e.Label);
        console.MarkupLine($"examples: {data.Train.Count} ({desirable} desirable, {data.Train.Count - desirable} undesirable{(train.FromPairs ? ", unpaired from preference pairs" : "")}); " +
            $"{trainer.TotalSteps} steps ({trainer.StepsPerEpoch} per epoch); loss {Markup.Escape(trainer.Loss.Name)}, β {options.Beta.ToString(CultureInfo.InvariantCulture)}");
        TrainingProgress.WriteParameters(console, model, TrainCommand.ReferenceDescription(options));
        if (launch?.IsRank0 ?? true)
        {
            RunFolder.DeleteEarlierCheckpoints(options);
        }

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
        trainer.CheckpointOnCancel = true;
        TrainOutput result;
        try
        {
            var display = new TrainingDisplay("train", "steps/s", e => FormatLine(e, trainer.TotalSteps), options.EffectiveReportTo.Contains(ReportTarget.Console));
            result = TrainingProgress.Run(console, trainer.Loop, display, cancellationToken, () => trainer.Train(cancellationToken: cancellationToken));
        }
        catch (TrainingInterruptedException e)
        {
            return DpoSharpCli.WriteInterrupted(ResumeMessages.Interrupted(e, DpoSharpCli.Invocation?.Arguments, "train", options.ResumeFromCheckpoint));
        }

        WriteConfig();
        var table = new Table().AddColumn("metric").AddColumn("value");
        foreach (var (k, v) in result.LastLog)
        {
            table.AddRow(Markup.Escape(k), v.ToString("G6", CultureInfo.InvariantCulture));
        }

        console.Write(table);
        console.MarkupLine($"done: {result.GlobalStep} steps in {wall.Elapsed.TotalSeconds.ToString("F1", CultureInfo.InvariantCulture)} s; model saved in {Markup.Escape(Path.GetFullPath(options.OutputDir))}");
        return 0;
    }

    /// <summary>One console line: step, loss, KL, margin (train or eval).</summary>
    public static string FormatLine(TrainerLogEntry e, int totalSteps)
    {
        string prefix = e.Metrics.ContainsKey("eval_loss") ? "eval_" : "";
        string V(string name, string format) => e.Metrics.TryGetValue(prefix + name, out var v) ? v.ToString(format, CultureInfo.InvariantCulture) : "-";
        var line = $"{(prefix.Length > 0 ? "eval " : "")}step {e.Step}/{totalSteps}  loss {V("loss", "F4")}  kl {V("kl", "F4")}  margin {V("rewards/margins", "F4")}";
        return prefix.Length == 0 ? line + $"  lr {V("learning_rate", "G3")}" : line;
    }
}
