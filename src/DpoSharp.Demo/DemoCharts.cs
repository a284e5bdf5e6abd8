using System.Globalization;
using ScottPlot;

namespace DpoSharp.Demo;

/// <summary>The demo's own PNG charts (ScottPlot): truthfulness before/after and the β frontier.</summary>
public static class DemoCharts
{
    /// <summary>Bar chart: truthfulness and eval_rewards/accuracies after SFT and after DPO. Returns the path.</summary>
    public static string WriteTruthfulness(string path, DemoEvaluation before, DemoEvaluation after)
    {
        ArgumentNullException.ThrowIfNull(before);
        ArgumentNullException.ThrowIfNull(after);
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        var plot = new Plot();
        var bars = new List<Bar>
        {
            new() { Position = 1, Value = before.Truthfulness, FillColor = Colors.Gray, Label = Pct(before.Truthfulness) },
            new() { Position = 2, Value = after.Truthfulness, FillColor = Colors.SeaGreen, Label = Pct(after.Truthfulness) },
            new() { Position = 4, Value = before.FalseAnswerRate, FillColor = Colors.Gray, Label = Pct(before.FalseAnswerRate) },
            new() { Position = 5, Value = after.FalseAnswerRate, FillColor = Colors.IndianRed, Label = Pct(after.FalseAnswerRate) },
            new() { Position = 7, Value = before.RewardsAccuracies, FillColor = Colors.Gray, Label = Pct(before.RewardsAccuracies) },
            new() { Position = 8, Value = after.RewardsAccuracies, FillColor = Colors.SteelBlue, Label = Pct(after.RewardsAccuracies) },
        };
        var series = plot.Add.Bars(bars);
        series.ValueLabelStyle.FontSize = 14;
        plot.Axes.Bottom.SetTicks(
            [1, 2, 4, 5, 7, 8],
            ["after SFT", "after DPO", "after SFT", "after DPO", "after SFT", "after DPO"]);
        plot.Axes.SetLimitsY(0, 1.1);
        plot.Title("Held-out questions: truthful answers | false answers | eval reward accuracy");
        plot.YLabel("fraction of held-out questions");
        plot.SavePng(path, 900, 500);
        return path;
    }

    /// <summary>Scatter: truthfulness against KL from the reference, one point per β (plus the SFT model at KL 0).</summary>
    public static string WriteFrontier(string path, double sftTruthfulness, IReadOnlyList<DemoSweepPoint> points)
    {
        ArgumentNullException.ThrowIfNull(points);
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        var plot = new Plot();
        var ordered = points.OrderBy(p => p.KlToReference).ToList();
        double[] xs = [0, .. ordered.Select(p => p.KlToReference)];
        double[] ys = [sftTruthfulness, .. ordered.Select(p => p.Truthfulness)];
        var line = plot.Add.Scatter(xs, ys);
        line.MarkerSize = 10;
        line.LineWidth = 1;
        var sft = plot.Add.Text("SFT (reference)", 0, sftTruthfulness);
        sft.LabelFontSize = 12;
        foreach (var p in ordered)
        {
            var label = plot.Add.Text("β=" + p.Beta.ToString(CultureInfo.InvariantCulture), p.KlToReference, p.Truthfulness);
            label.LabelFontSize = 12;
        }

        double maxX = xs.Max();
        plot.Axes.SetLimitsX(-0.05 * Math.Max(maxX, 0.1), maxX * 1.2 + 0.05);
        plot.Title("Truthfulness vs KL from the reference (DPO at several β)");
        plot.XLabel("KL(π ‖ π_ref) on held-out prompts (nats per answer)");
        plot.YLabel("held-out truthfulness");
        plot.SavePng(path, 800, 500);
        return path;
    }

    private static string Pct(double v) => (v * 100).ToString("F0", CultureInfo.InvariantCulture) + "%";
}
