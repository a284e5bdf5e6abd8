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
/// <c>dposharp sft --model DIR --dataset FILE --output-dir DIR [options]</c>: supervised fine-tuning on prompt/completion
/// JSONL with a completion-only loss (<see cref="SftTrainer"/>). Takes the same option names as <c>train</c>
/// (learning_rate, per_device_train_batch_size, num_train_epochs / max_steps, lr_scheduler_type, warmup, seed,
/// logging_steps, report_to, …, from <c>--config</c> and/or kebab-case flags); preference-only options are ignored.
/// </summary>
public static class SftCommand
{
    /// <summary>Creates the command.</summary>
    public static Command Create()
    {
        var cmd = new Command("sft", "Supervised fine-tuning on prompt/completion data (completion-only loss); writes an HF model, metrics.jsonl, TensorBoard events and charts.");
        var flags = new TrainingOptionFlags(cmd, "YAML or JSON file of options (TRL names); flags override it.");

        cmd.SetAction((parse, ct) =>
        {
            var options = flags.Build(parse);
            var console = DpoSharpCli.CreateConsole(parse.InvocationConfiguration.Output);
            return Task.FromResult(Run(options, console, ct));
        });
        return cmd;
    }

    /// <summary>Runs SFT as <paramref name="options"/> say; returns the exit code.</summary>
    public static int Run(DpoOptions options, IAnsiConsole console, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(console);
        options.Validate();
        if (options.Model is null)
        {
            throw new DpoSharpException("sft: model is not set: give the Hugging Face model directory with --model DIR.");
        }

        if (options.Dataset is null)
        {
            throw new DpoSharpException("sft: dataset is not set: give prompt/completion JSONL with --dataset FILE.");
        }

        var device = TrainCommand.ResolveDevice(options.Device);
        var rows = SftDataset.Load(options.Dataset);
        var eval = options.EvalDataset is null ? null : SftDataset.Load(options.EvalDataset);
        var tokenizer = HfTokenizer.Load(options.Model);
        using var model = ModelLoader.Load(options.Model, device);
        using var trainer = new SftTrainer(model, options, rows, tokenizer, eval)
        {
            TokenizerFilesSource = options.Model,
            MetricSinkFactories = { ["png"] = PngChartSink.Factory },
        };
        console.MarkupLine($"dposharp sft: {Markup.Escape(options.Model)} on {Markup.Escape(options.Dataset)} ({rows.Count} rows) → {Markup.Escape(Path.GetFullPath(options.OutputDir))}; {trainer.TotalSteps} steps ({device})");
        Directory.CreateDirectory(options.OutputDir);
        File.WriteAllText(Path.Combine(options.OutputDir, "dposharp_config.yaml"), OptionBinder.ToYaml(options));
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

    /// <summary>Trains with the console display (progress, metric lines, resume notice; none with report_to none).
    /// Ctrl-C (<paramref name="cancellationToken"/>) stops after the current step with a checkpoint of it.</summary>
    private static TrainOutput Train(SftTrainer trainer, DpoOptions options, IAnsiConsole console, CancellationToken cancellationToken)
    {
        trainer.CheckpointOnCancel = true;
        var display = new TrainingDisplay("sft", "samples/s", e => Line(e, trainer.TotalSteps), options.EffectiveReportTo.Contains("console"));
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
