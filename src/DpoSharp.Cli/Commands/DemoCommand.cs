using System.CommandLine;
using System.Globalization;
using DpoSharp.Cli.Terminal;
using DpoSharp.Demo;
using DpoSharp.Training;
using Spectre.Console;

namespace DpoSharp.Cli.Commands;

/// <summary>
/// <c>dposharp demo</c> (also <c>dposharp train</c> with no options, see <see cref="TrainCommand.IsDemoRequest"/>): the built-in end-to-end demo — data → SFT →
/// DPO → evaluation before/after — with a progress bar per stage, a results table and three example answers.
/// <c>--sweep-beta 0.05,0.1,0.5</c> adds one DPO run per β and the truthfulness-vs-KL frontier chart.
/// </summary>
public static class DemoCommand
{
    /// <summary>Default output directory of the demo.</summary>
    public const string DefaultOutputDir = "dposharp-demo";

    /// <summary>What the display says on the first Ctrl-C in the demo.</summary>
    private const string StoppingNote = "stopping after the current step; Ctrl-C again quits now";

    /// <summary>Creates the command.</summary>
    public static Command Create()
    {
        var output = new Option<string>("--output-dir") { Description = "Where the demo writes the model, metrics, charts and summary.json.", DefaultValueFactory = _ => DefaultOutputDir };
        var seed = new Option<int>("--seed") { Description = "Seed of data, weights and training.", DefaultValueFactory = _ => 42 };
        var beta = new Option<double?>("--beta") { Description = "DPO β of the main run (default 0.5)." };
        var sweep = new Option<string?>("--sweep-beta") { Description = "Comma-separated β values, e.g. 0.05,0.1,0.5: one DPO run each and the truthfulness-vs-KL frontier (charts/frontier.png)." };
        var quick = new Option<bool>("--quick") { Description = "A shortened run (smaller data, fewer steps): a smoke test, not the measured demo." };
        var rpo = new Option<double?>("--rpo-alpha") { Description = "Weight of the chosen answer's NLL added to the DPO loss (TRL's rpo_alpha; default 1.0); 0 = plain sigmoid DPO." };
        var threads = new Option<int>("--threads") { Description = "Intra-op CPU threads during the demo (0 = TorchSharp's default).", DefaultValueFactory = _ => 1 };
        var device = DeviceOption.Create(DeviceOption.Cpu);
        var cmd = new Command("demo", "Built-in demo: SFT then DPO make a small Llama more truthful on held-out questions, in minutes on a CPU.")
        {
            output, seed, beta, rpo, sweep, quick, threads, device,
        };
        cmd.SetAction((parse, ct) =>
        {
            var outDir = parse.GetValue(output) ?? DefaultOutputDir;
            var options = parse.GetValue(quick) ? DemoOptions.Quick(outDir) : new DemoOptions { OutputDir = outDir };
            options.Seed = parse.GetValue(seed);
            options.Threads = parse.GetValue(threads);
            options.Device = DeviceOption.ResolveName(parse.GetValue(device));
            if (parse.GetValue(beta) is double b)
            {
                options.Beta = b;
            }

            if (parse.GetValue(rpo) is double alpha)
            {
                options.RpoAlpha = alpha;
            }

            options.SweepBetas = ParseBetas(parse.GetValue(sweep));
            var console = DpoSharpCli.CreateConsole(parse.InvocationConfiguration.Output);
            return Task.FromResult(Run(options, console, ct));
        });
        return cmd;
    }

    /// <summary>Parses <c>0.05,0.1,0.5</c>.</summary>
    public static IReadOnlyList<double> ParseBetas(string? text)
    {
        if (string.IsNullOrWhiteSpace(text))
        {
            return [];
        }

        var list = new List<double>();
        foreach (var part in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (!double.TryParse(part, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) || !(v > 0) || double.IsInfinity(v))
            {
                throw new DpoSharpException($"--sweep-beta: '{part}' is not a positive number; give comma-separated values such as 0.05,0.1,0.5.");
            }

            list.Add(v);
        }

        return list;
    }

    /// <summary>Runs the demo with progress bars (plain lines when the output is redirected) and prints the results.</summary>
    public static int Run(DemoOptions options, IAnsiConsole console, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(console);
        options.Validate();
        console.MarkupLine($"[bold]dposharp demo[/]: SFT then DPO on held-out truthfulness questions → {Markup.Escape(Path.GetFullPath(options.OutputDir))} ({options.Device})");
        DemoResult result;
        var stage = new DemoStageTracker();
        try
        {
            result = console.Profile.Capabilities.Interactive
                ? RunWithProgress(options, console, stage, cancellationToken)
                : RunWithLines(options, console, stage, cancellationToken);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            return DpoSharpCli.WriteInterrupted([$"interrupted during the demo's {stage.Current ?? "start"} stage; the demo does not resume: run it again to start over."]);
        }

        PrintResult(console, result);
        return 0;
    }

    /// <summary>The unit a demo stage's rate counts: optimizer steps, or answered evaluation questions.</summary>
    private static string? RateUnit(string stage) =>
        stage == DemoRunner.StageData ? null : stage.StartsWith("eval", StringComparison.Ordinal) ? "answers/s" : "steps/s";

    private static DemoResult RunWithProgress(DemoOptions options, IAnsiConsole console, DemoStageTracker stage, CancellationToken ct)
    {
        return console.Progress()
            .AutoClear(false)
            .Columns(new ProgressMeterColumn())
            .Start(ctx =>
            {
                // One row per stage, aligned; a stage's time freezes when the next one starts (or the demo ends).
                var rows = new Dictionary<string, (ProgressTask Task, ProgressMeter Meter)>();
                ProgressMeter? current = null;
                using var note = ct.Register(() =>
                {
                    if (current is { } m)
                    {
                        m.Note = StoppingNote;
                    }
                });
                try
                {
                    return DemoRunner.Run(options, p =>
                    {
                        // Evaluation stages do not watch the token themselves: stop between their questions.
                        stage.Current = p.Stage;
                        ct.ThrowIfCancellationRequested();
                        if (!rows.TryGetValue(p.Stage, out var row))
                        {
                            current?.Finish();
                            var meter = new ProgressMeter(p.Stage, p.Total, RateUnit(p.Stage));
                            row = (ctx.AddTask(Markup.Escape(p.Stage), maxValue: Math.Max(1, p.Total)), meter);
                            row.Task.Tag = meter;
                            rows[p.Stage] = row;
                            ProgressMeter.Align([.. rows.Values.Select(r => r.Meter)]);
                            current = meter;
                        }

                        row.Meter.Total = Math.Max(1, p.Total);
                        row.Meter.Report(p.Done, p.Done);
                        row.Task.MaxValue = Math.Max(1, p.Total);
                        row.Task.Value = p.Done;
                    }, ct);
                }
                finally
                {
                    foreach (var r in rows.Values)
                    {
                        r.Meter.Finish();
                    }

                    ctx.Refresh();
                }
            });
    }

    private static DemoResult RunWithLines(DemoOptions options, IAnsiConsole console, DemoStageTracker stage, CancellationToken ct)
    {
        string? current = null;
        var sw = System.Diagnostics.Stopwatch.StartNew();
        int lastTenth = -1;
        using var note = ct.Register(() => (DpoSharpCli.Invocation?.Error ?? Console.Error).WriteLine(StoppingNote + "."));
        return DemoRunner.Run(options, p =>
        {
            stage.Current = p.Stage;
            ct.ThrowIfCancellationRequested();
            if (p.Stage != current)
            {
                current = p.Stage;
                lastTenth = -1;
            }

            int tenth = p.Total > 0 ? p.Done * 10 / p.Total : 10;
            if (tenth != lastTenth && (tenth % 5 == 0 || p.Done == p.Total))
            {
                lastTenth = tenth;
                console.WriteLine($"[{sw.Elapsed.TotalSeconds,6:F1}s] {p.Stage}: {p.Done}/{p.Total}");
            }
        }, ct);
    }

    private static void PrintResult(IAnsiConsole console, DemoResult r)
    {
        string P(double v) => (v * 100).ToString("F1", CultureInfo.InvariantCulture) + "%";
        string F(double v) => v.ToString("F3", CultureInfo.InvariantCulture);
        var table = new Table().AddColumn("held-out metric").AddColumn(new TableColumn("after SFT").RightAligned()).AddColumn(new TableColumn("after DPO").RightAligned());
        table.AddRow("truthfulness (greedy answer = true answer)", P(r.Before.Truthfulness), P(r.After.Truthfulness));
        table.AddRow("false answer rate", P(r.Before.FalseAnswerRate), P(r.After.FalseAnswerRate));
        table.AddRow("eval_rewards/accuracies", F(r.Before.RewardsAccuracies), F(r.After.RewardsAccuracies));
        table.AddRow("eval_rewards/margins", F(r.Before.RewardsMargins), F(r.After.RewardsMargins));
        table.AddRow("KL to reference (nats/answer)", F(r.Before.KlToReference), F(r.After.KlToReference));
        console.Write(table);
        var ex = new Table().AddColumn("question").AddColumn("true").AddColumn("after SFT").AddColumn("after DPO");
        for (int i = 0; i < Math.Min(3, r.EvalQuestions.Count); i++)
        {
            var q = r.EvalQuestions[i];
            ex.AddRow(Markup.Escape(q.Prompt), Markup.Escape(q.TrueAnswer), Markup.Escape(r.Before.Answers[i]), Markup.Escape(r.After.Answers[i]));
        }

        console.Write(ex);
        if (r.Sweep.Count > 0)
        {
            var sweep = new Table().AddColumn("β").AddColumn("truthfulness").AddColumn("KL to reference").AddColumn("eval_rewards/accuracies");
            foreach (var p in r.Sweep)
            {
                sweep.AddRow(p.Beta.ToString(CultureInfo.InvariantCulture), P(p.Truthfulness), F(p.KlToReference), F(p.RewardsAccuracies));
            }

            console.Write(sweep);
        }

        console.MarkupLine($"done in {r.Seconds.ToString("F1", CultureInfo.InvariantCulture)} s ({string.Join(", ", r.StageSeconds.Select(kv => $"{Markup.Escape(kv.Key)} {kv.Value.ToString("F1", CultureInfo.InvariantCulture)} s"))}).");
        console.MarkupLine($"model, metrics.jsonl, runs/ (TensorBoard), charts/*.png and summary.json in {Markup.Escape(r.OutputDir)}");
        console.MarkupLine($"try it: dposharp generate --model {Markup.Escape(r.OutputDir)} --prompt \"Which is larger, 17 or 23?\"");
    }

    /// <summary>The demo's stage being run (named when the demo is interrupted).</summary>
    private sealed class DemoStageTracker
    {
        private volatile string? _current;

        public string? Current { get => _current; set => _current = value; }
    }
}
