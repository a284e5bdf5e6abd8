using System.Globalization;
using DpoSharp.Charts;
using ScottPlot;

namespace DpoSharp.Demo;

/// <summary>The demo's own PNG charts (ScottPlot): truthfulness before/after and the β frontier.</summary>
public static class DemoCharts
{
    /// <summary>The truthfulness chart's bar groups, left to right.</summary>
    internal static readonly IReadOnlyList<string> TruthfulnessGroups = ["truthful answers", "false answers", "eval reward accuracy"];

    /// <summary>The frontier image's width in pixels.</summary>
    internal const int FrontierWidth = 800;

    /// <summary>The frontier image's height in pixels.</summary>
    internal const int FrontierHeight = 500;

    /// <summary>Legend text of the bars after SFT (grey, left in each group).</summary>
    internal const string AfterSft = "after SFT";

    /// <summary>Legend text of the bars after DPO (blue, right in each group).</summary>
    internal const string AfterDpo = "after DPO";

    /// <summary>Bar chart: truthfulness and eval_rewards/accuracies after SFT and after DPO. Returns the path.</summary>
    public static string WriteTruthfulness(string path, DemoEvaluation before, DemoEvaluation after)
    {
        using var plot = TruthfulnessPlot(before, after);
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        plot.SavePng(path, 900, 500);
        return path;
    }

    /// <summary>Scatter: truthfulness against KL from the reference, one point per β (plus the SFT model at KL 0).</summary>
    public static string WriteFrontier(string path, double sftTruthfulness, IReadOnlyList<DemoSweepPoint> points)
    {
        using var plot = FrontierPlot(sftTruthfulness, points);
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        plot.SavePng(path, FrontierWidth, FrontierHeight);
        return path;
    }

    /// <summary>
    /// Grouped bars in percent (<see cref="TruthfulnessGroups"/>; in each, <see cref="AfterSft"/> then
    /// <see cref="AfterDpo"/>), each labelled above with its value to one decimal (<c>95.0%</c>), the legend below
    /// the axes.
    /// </summary>
    internal static Plot TruthfulnessPlot(DemoEvaluation before, DemoEvaluation after)
    {
        ArgumentNullException.ThrowIfNull(before);
        ArgumentNullException.ThrowIfNull(after);
        double[] sft = [before.Truthfulness, before.FalseAnswerRate, before.RewardsAccuracies];
        double[] dpo = [after.Truthfulness, after.FalseAnswerRate, after.RewardsAccuracies];
        var plot = new Plot();
        AddBars(plot, sft, 0, Colors.Gray, AfterSft);
        AddBars(plot, dpo, 1, Colors.SteelBlue, AfterDpo);
        plot.Axes.Bottom.SetTicks([.. TruthfulnessGroups.Select((_, g) => GroupStart(g) + 0.5)], [.. TruthfulnessGroups]);
        plot.Axes.Bottom.MajorTickStyle.Length = 0;
        plot.Axes.Left.SetTicks([0, 20, 40, 60, 80, 100], ["0", "20", "40", "60", "80", "100"]);
        plot.Axes.SetLimitsY(0, 112);   // room for the labels above 100% bars
        plot.Axes.SetLimitsX(GroupStart(0) - 0.8, GroupStart(TruthfulnessGroups.Count - 1) + 1.8);
        plot.Title("Held-out questions after SFT and after DPO");
        plot.YLabel("% of held-out questions");
        ChartStyle.ShowLegendOutside(plot);
        return plot;
    }

    /// <summary>
    /// Truthfulness (in percent) against KL, one labelled point per β (<c>β=0.1: 93.0%</c>) and the SFT model at KL 0;
    /// each label sits in a spot beside its point that covers no other label, point or line
    /// (<see cref="PointLabels.Place"/>, laid out for a <paramref name="width"/> × <paramref name="height"/> image).
    /// </summary>
    internal static Plot FrontierPlot(double sftTruthfulness, IReadOnlyList<DemoSweepPoint> points, int width = FrontierWidth, int height = FrontierHeight)
    {
        ArgumentNullException.ThrowIfNull(points);
        var plot = new Plot();
        var ordered = points.OrderBy(p => p.KlToReference).ToList();
        double[] xs = [0, .. ordered.Select(p => p.KlToReference)];
        double[] ys = [sftTruthfulness * 100, .. ordered.Select(p => p.Truthfulness * 100)];
        var line = plot.Add.Scatter(xs, ys);
        line.MarkerSize = 10;
        line.LineWidth = 1;
        string[] texts =
        [
            "SFT (reference): " + ChartStyle.Percent(sftTruthfulness),
            .. ordered.Select(p => "β=" + p.Beta.ToString(CultureInfo.InvariantCulture) + ": " + ChartStyle.Percent(p.Truthfulness)),
        ];
        var labels = texts.Select((t, i) => plot.Add.Text(t, xs[i], ys[i])).ToList();

        double maxX = xs.Max();
        plot.Axes.SetLimitsX(-0.05 * Math.Max(maxX, 0.1), (maxX * 1.3) + 0.05);
        plot.Axes.SetLimitsY(Math.Max(0, ys.Min() - 8), ys.Max() + 6);   // room for the labels above the points
        plot.Title("Truthfulness vs KL from the reference (DPO at several β)");
        plot.XLabel("KL(π ‖ π_ref) on held-out prompts (nats per answer)");
        plot.YLabel("held-out truthfulness (%)");

        // Lay the figure out once at its final size, then move each label to a free spot beside its point.
        foreach (var label in labels)
        {
            label.LabelFontSize = 12;
            label.Alignment = Alignment.UpperLeft;
        }

        plot.GetImage(width, height).Dispose();
        using var paint = Paint.NewDisposablePaint();
        var pixels = xs.Select((x, i) => plot.GetPixel(new Coordinates(x, ys[i]))).ToList();
        var sizes = labels.Select(l => l.LabelStyle.Measure(l.LabelText, paint).Size).ToList();
        var spots = PointLabels.Place(pixels, sizes, plot.LastRender.DataRect);
        for (int i = 0; i < labels.Count; i++)
        {
            labels[i].Location = plot.GetCoordinates(spots[i].TopLeft);
        }

        return plot;
    }

    /// <summary>The label of a bar: its fraction as a percentage to one decimal.</summary>
    internal static string BarLabel(double fraction) => ChartStyle.Percent(fraction);

    private static double GroupStart(int group) => 1 + (3 * group);

    private static void AddBars(Plot plot, double[] fractions, int offset, Color color, string legend)
    {
        var bars = plot.Add.Bars(fractions.Select((v, g) => new Bar
        {
            Position = GroupStart(g) + offset,
            Value = v * 100,
            FillColor = color,
            Label = BarLabel(v),
        }).ToList());
        bars.LegendText = legend;
        bars.ValueLabelStyle.FontSize = 14;
    }
}
