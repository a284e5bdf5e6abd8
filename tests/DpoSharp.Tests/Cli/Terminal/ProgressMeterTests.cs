using DpoSharp.Cli.Terminal;
using Spectre.Console;

namespace DpoSharp.Tests.Cli.Terminal;

/// <summary>The progress row: labelled, unabridged at 80 columns, aligned across demo stages, time frozen when done.</summary>
public class ProgressMeterTests
{
    /// <summary>Draws the meters as the CLI does (Spectre's live progress, one <see cref="ProgressMeterColumn"/>) on an
    /// interactive console of <paramref name="width"/> columns; returns the last frame's rows.</summary>
    private static List<string> Render(int width, params ProgressMeter[] meters)
    {
        var (console, output) = TestTerminal.Create(width);
        console.Progress().AutoClear(false).AutoRefresh(false).Columns(new ProgressMeterColumn()).Start(ctx =>
        {
            foreach (var m in meters)
            {
                ctx.AddTask(m.Name, maxValue: m.Total).Tag = m;
            }

            ctx.Refresh();
        });
        var lines = TestTerminal.Lines(output.ToString());
        return [.. meters.Select(m => lines.Last(l => l.StartsWith(m.Name, StringComparison.Ordinal)))];
    }

    [Fact]
    public void At80ColumnsARunShowsStepPercentElapsedEtaAndRateLabelledAndABar()
    {
        var clock = new ManualClock();
        var meter = new ProgressMeter("train", 1001, "pairs/s", clock);
        clock.Advance(2);
        meter.Report(1, 8);          // the first step: start-up included
        clock.Advance(60);
        meter.Report(251, 2008);     // 250 steps and 2000 pairs in 60 s after it

        var row = Assert.Single(Render(80, meter));
        Assert.Equal("train ━━━━━━━━━━━━ step  251/1001  25% elapsed 0:01:02 eta 0:03:00  33.3 pairs/s", row);
        Assert.Equal(80, row.Length);
        Assert.DoesNotContain("…", row);
    }

    [Fact]
    public void BeforeTheFirstStepEtaAndRateAreDashesAndSftCountsSamples()
    {
        var meter = new ProgressMeter("sft", 40, "samples/s", new ManualClock());
        var row = Assert.Single(Render(80, meter));
        Assert.EndsWith("step  0/40   0% elapsed 0:00:00 eta -:--:--     - samples/s", row, StringComparison.Ordinal);
        Assert.Contains("━━━", row);
    }

    [Fact]
    public void DemoStagesAlignAndAFinishedStageStopsCounting()
    {
        var clock = new ManualClock();
        var data = new ProgressMeter("data", 1, null, clock);
        data.Report(1, 1);
        clock.Advance(3);
        data.Finish();
        var sft = new ProgressMeter("sft", 504, "steps/s", clock);
        var eval = new ProgressMeter("eval (DPO) β=0.05", 100, "answers/s", clock);
        ProgressMeter.Align([data, sft, eval]);
        clock.Advance(1);
        sft.Report(1, 1);
        eval.Report(1, 1);
        clock.Advance(9);
        sft.Report(91, 91);
        eval.Report(50, 50);
        clock.Advance(100);          // the data stage finished 110 s ago: its time stays at 3 s

        var rows = Render(80, data, sft, eval);
        Assert.Equal(TimeSpan.FromSeconds(3), data.Elapsed);
        Assert.Contains("step   1/1   100% elapsed 0:00:03 eta 0:00:00", rows[0]);
        Assert.EndsWith("step  91/504  18% elapsed 0:01:50 eta 0:00:42  10.0 steps/s", rows[1], StringComparison.Ordinal);
        Assert.EndsWith("step  50/100  50% elapsed 0:01:50 eta 0:00:10  5.44 answers/s", rows[2], StringComparison.Ordinal);

        // Names, steps, percentages and times start in the same columns on every row; nothing is cut.
        Assert.All(rows, r => Assert.True(r.Length <= 80, r));
        Assert.Single(rows.Select(r => r.IndexOf("step", StringComparison.Ordinal)).Distinct());
        Assert.Single(rows.Select(r => r.IndexOf("elapsed", StringComparison.Ordinal)).Distinct());
        Assert.DoesNotContain(rows, r => r.Contains('…'));
    }

    [Fact]
    public void TheStopNoteShowsUnderTheRow()
    {
        var meter = new ProgressMeter("train", 10, "pairs/s", new ManualClock()) { Note = TrainingProgress.StoppingNote };
        var (console, output) = TestTerminal.Create(80);
        console.Progress().AutoRefresh(false).Columns(new ProgressMeterColumn()).Start(ctx =>
        {
            ctx.AddTask("train", maxValue: 10).Tag = meter;
            ctx.Refresh();
        });
        Assert.Contains(TrainingProgress.StoppingNote, TestTerminal.Lines(output.ToString()));
    }
}
