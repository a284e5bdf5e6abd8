using DpoSharp.Data;
using DpoSharp.Training.Engine;
using Spectre.Console;

namespace DpoSharp.Cli.Terminal;

/// <summary>How <see cref="TrainingProgress"/> shows a run.</summary>
/// <param name="Name">The row's name (<c>train</c>, <c>sft</c>).</param>
/// <param name="RateUnit">The examples the rate counts (<c>pairs/s</c>, <c>samples/s</c>).</param>
/// <param name="FormatLog">One line per logged record (training and eval metrics).</param>
/// <param name="Show">False (<c>report_to: none</c>): no progress and no metric lines.</param>
public sealed record TrainingDisplay(string Name, string RateUnit, Func<TrainerLogEntry, string> FormatLog, bool Show = true);

/// <summary>
/// The console side of a training run (<c>train</c>, <c>sft</c>): a live progress row (<see cref="ProgressMeter"/>)
/// with the metric lines above it when the console is interactive, else one line per logged record with the elapsed
/// time and ETA; the resume notice (<see cref="ResumeMessages.Resuming"/>); and, on the first Ctrl-C, a note that the
/// run stops after its current step.
/// </summary>
public static class TrainingProgress
{
    /// <summary>Prints the model's trainable and total parameters, the LoRA targets when it has adapters, and the
    /// run's <paramref name="reference"/> (what the reference log-probs come from) when it has one.</summary>
    public static void WriteParameters(IAnsiConsole console, DpoSharp.Models.ICausalLM model, string? reference = null)
    {
        ArgumentNullException.ThrowIfNull(console);
        var count = DpoSharp.Models.Lora.LoraModel.CountParameters(model);
        var targets = DpoSharp.Models.Lora.LoraModel.Targets(model);
        var lora = targets.Count == 0 ? "" : $"; LoRA on {targets.Count} layers ({string.Join(", ", targets.Select(t => t.Path.Split('.')[^1]).Distinct())})";
        lora += reference is null ? "" : $"; reference: {reference}";
        console.MarkupLine(Markup.Escape(string.Create(System.Globalization.CultureInfo.InvariantCulture,
            $"trainable parameters: {count.Trainable:N0} of {count.Total:N0} ({count.TrainablePercent:F3}%){lora}")));
    }

    /// <summary>What the display says on the first Ctrl-C / SIGTERM.</summary>
    public const string StoppingNote = "stopping after the current step to save a checkpoint; Ctrl-C again quits now";

    /// <summary>Runs <paramref name="train"/> (which runs <paramref name="loop"/>) with the display.</summary>
    /// <typeparam name="TBatch">The loop's batch type.</typeparam>
    /// <param name="console">Where the run is shown.</param>
    /// <param name="loop">The run's loop (events, state, sampler).</param>
    /// <param name="display">Name, rate unit, log-line format.</param>
    /// <param name="stop">Cancelled on Ctrl-C: the display notes that the run stops after this step.</param>
    /// <param name="train">Runs the training and returns its output.</param>
    /// <param name="clock">Time source (tests). Default: the system clock.</param>
    public static TrainOutput Run<TBatch>(IAnsiConsole console, TrainingLoop<TBatch> loop, TrainingDisplay display, CancellationToken stop, Func<TrainOutput> train, TimeProvider? clock = null)
        where TBatch : SequenceBatch
    {
        ArgumentNullException.ThrowIfNull(console);
        ArgumentNullException.ThrowIfNull(loop);
        ArgumentNullException.ThrowIfNull(display);
        ArgumentNullException.ThrowIfNull(train);
        var meter = new ProgressMeter(display.Name, loop.TotalSteps, display.RateUnit, clock);
        var examples = new ExampleCounter<TBatch>(loop);
        void OnResuming(ResumeInfo info)
        {
            examples.Rebase();
            meter.Rebase(info.Step, examples.Total);
            WriteLine(console, ResumeMessages.Resuming(info, loop.Options.Checkpointing.OutputDir));
        }

        void OnStep(int step, int total)
        {
            meter.Total = total;
            meter.Report(step, examples.Advance());
        }

        void OnSkipped(SkippedStep skipped) => WriteLine(console, "warning: NaN/inf at " + skipped.Describe() +
            $" ({skipped.Consecutive} in a row; max_bad_steps {loop.Options.Optimizer.MaxBadSteps}).");

        loop.Resuming += OnResuming;
        loop.StepCompleted += OnStep;
        loop.StepSkipped += OnSkipped;
        try
        {
            if (!display.Show)
            {
                return train();
            }

            return console.Profile.Capabilities.Interactive
                ? RunLive(console, loop, display, meter, stop, train)
                : RunWithLines(console, loop, display, meter, stop, train);
        }
        finally
        {
            meter.Finish();
            loop.Resuming -= OnResuming;
            loop.StepCompleted -= OnStep;
            loop.StepSkipped -= OnSkipped;
        }
    }

    private static TrainOutput RunLive<TBatch>(IAnsiConsole console, TrainingLoop<TBatch> loop, TrainingDisplay display, ProgressMeter meter, CancellationToken stop, Func<TrainOutput> train)
        where TBatch : SequenceBatch
    {
        return console.Progress()
            .AutoClear(false)
            .Columns(new ProgressMeterColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask(display.Name, maxValue: meter.Total);
                task.Tag = meter;
                void OnLogged(TrainerLogEntry e) => WriteLine(console, display.FormatLog(e));
                void OnStep(int step, int total)
                {
                    task.MaxValue = total;
                    task.Value = step;
                }

                loop.Logged += OnLogged;
                loop.StepCompleted += OnStep;
                using var note = stop.Register(() => meter.Note = StoppingNote);
                try
                {
                    return train();
                }
                finally
                {
                    meter.Finish();
                    loop.Logged -= OnLogged;
                    loop.StepCompleted -= OnStep;
                    ctx.Refresh();
                }
            });
    }

    private static TrainOutput RunWithLines<TBatch>(IAnsiConsole console, TrainingLoop<TBatch> loop, TrainingDisplay display, ProgressMeter meter, CancellationToken stop, Func<TrainOutput> train)
        where TBatch : SequenceBatch
    {
        void OnLogged(TrainerLogEntry e)
        {
            var line = display.FormatLog(e);
            if (!e.Metrics.ContainsKey("eval_loss"))
            {
                line += $"  elapsed {ProgressMeter.FormatTime(meter.Elapsed)}  eta {(meter.Remaining is { } r ? ProgressMeter.FormatTime(r) : "-:--:--")}";
            }

            WriteLine(console, line);
        }

        loop.Logged += OnLogged;
        var error = DpoSharpCli.Invocation?.Error;
        using var note = stop.Register(() =>
        {
            var writer = error ?? Console.Error;
            writer.WriteLine(StoppingNote + ".");
            writer.Flush();
        });
        try
        {
            return train();
        }
        finally
        {
            loop.Logged -= OnLogged;
        }
    }

    /// <summary>A line above the live display; when the output is not a terminal, straight to it rather than through
    /// the console's word wrap (a log line stays one line in a file).</summary>
    private static void WriteLine(IAnsiConsole console, string line)
    {
        if (console.Profile.Capabilities.Interactive)
        {
            console.MarkupLine(Markup.Escape(line));
        }
        else
        {
            console.Profile.Out.Writer.WriteLine(line);
        }
    }

    /// <summary>
    /// Examples (pairs, samples) the loop has consumed this session, exactly: the sampler's batches between the data
    /// positions before and after each step (the last batch of an epoch may be short).
    /// </summary>
    private sealed class ExampleCounter<TBatch>(TrainingLoop<TBatch> loop)
        where TBatch : SequenceBatch
    {
        private BatchSampler? _sampler;
        private int _epoch;
        private int _microBatch;
        private int _batchesEpoch = -1;
        private IReadOnlyList<int[]> _batches = [];

        public long Total { get; private set; }

        /// <summary>Starts counting at the loop's current data position (a resumed checkpoint's).</summary>
        public void Rebase()
        {
            _epoch = loop.State.DataEpoch;
            _microBatch = loop.State.MicroBatch;
        }

        /// <summary>Adds the batches taken since the last call; returns the total.</summary>
        public long Advance()
        {
            var state = loop.State;
            if (state.DataEpoch != _epoch)
            {
                // The loop moves to the next epoch before a step starts, so a step lies within one epoch.
                _epoch = state.DataEpoch;
                _microBatch = 0;
            }

            _sampler ??= loop.Sampler;
            if (_batchesEpoch != _epoch)
            {
                _batches = _sampler.EpochBatches(_epoch);
                _batchesEpoch = _epoch;
            }

            for (int i = _microBatch; i < Math.Min(state.MicroBatch, _batches.Count); i++)
            {
                Total += (long)_batches[i].Length * loop.WorldSize; // data parallel: every rank's share (rank 0 shows the rate)
            }

            _microBatch = state.MicroBatch;
            return Total;
        }
    }
}
