using DpoSharp.Training.Metrics;
using ScottPlot;

namespace DpoSharp.Charts;

/// <summary>One chart: the metrics drawn against the step, in one PNG.</summary>
/// <param name="FileName">PNG file name, e.g. <c>loss.png</c>.</param>
/// <param name="Title">Chart title.</param>
/// <param name="YLabel">Y-axis label.</param>
/// <param name="Metrics">Metric names drawn as lines (missing ones are skipped).</param>
public sealed record ChartSpec(string FileName, string Title, string YLabel, IReadOnlyList<string> Metrics);

/// <summary>
/// Draws PNG charts of a run with ScottPlot: loss, reward margins, reward accuracies and chosen/rejected rewards
/// against the step — the curves TRL runs show in W&amp;B — each with its <c>eval_</c> series when present.
/// </summary>
public static class PngChartWriter
{
    /// <summary>Default image width in pixels.</summary>
    public const int DefaultWidth = 800;

    /// <summary>Default image height in pixels.</summary>
    public const int DefaultHeight = 500;

    /// <summary>The default charts.</summary>
    public static IReadOnlyList<ChartSpec> DefaultCharts { get; } =
    [
        new("loss.png", "Loss", "loss", [MetricNames.Loss, MetricNames.EvalPrefix + MetricNames.Loss]),
        new("rewards_margins.png", "Reward margins (chosen − rejected)", "rewards/margins", [MetricNames.RewardsMargins, MetricNames.EvalPrefix + MetricNames.RewardsMargins]),
        new("rewards_accuracies.png", "Reward accuracies", "rewards/accuracies", [MetricNames.RewardsAccuracies, MetricNames.EvalPrefix + MetricNames.RewardsAccuracies]),
        new(
            "rewards_chosen_rejected.png",
            "Rewards of chosen and rejected completions",
            "reward",
            [MetricNames.RewardsChosen, MetricNames.RewardsRejected, MetricNames.EvalPrefix + MetricNames.RewardsChosen, MetricNames.EvalPrefix + MetricNames.RewardsRejected]),
    ];

    /// <summary>Reads <paramref name="metricsJsonl"/> and writes the default charts into <paramref name="outputDir"/>.</summary>
    /// <returns>The PNG files written (charts with no data are skipped).</returns>
    public static IReadOnlyList<string> WriteFromJsonl(string metricsJsonl, string outputDir)
        => Write(JsonlMetricSink.Read(metricsJsonl), outputDir);

    /// <summary>Writes <paramref name="charts"/> (default: <see cref="DefaultCharts"/>) of <paramref name="records"/>.</summary>
    /// <returns>The PNG files written (charts with no data are skipped).</returns>
    public static IReadOnlyList<string> Write(IReadOnlyList<MetricRecord> records, string outputDir, IReadOnlyList<ChartSpec>? charts = null, int width = DefaultWidth, int height = DefaultHeight)
    {
        ArgumentNullException.ThrowIfNull(records);
        ArgumentNullException.ThrowIfNull(outputDir);
        Directory.CreateDirectory(outputDir);
        var written = new List<string>();
        foreach (var chart in charts ?? DefaultCharts)
        {
            using var plot = Build(records, chart);
            if (plot is null)
            {
                continue;
            }

            var path = Path.Combine(outputDir, chart.FileName);
            plot.SavePng(path, width, height);
            written.Add(path);
        }

        return written;
    }

    /// <summary>
    /// The plot of <paramref name="chart"/>: one line per metric against the step, whole-number step ticks, and the
    /// legend below the axes (<see cref="ChartStyle.ShowLegendOutside"/>) so that it never covers a curve.
    /// </summary>
    /// <returns>Null when none of the chart's metrics has a value.</returns>
    internal static Plot? Build(IReadOnlyList<MetricRecord> records, ChartSpec chart)
    {
        var series = chart.Metrics
            .Select(m => (Name: m, Points: Points(records, m)))
            .Where(s => s.Points.Xs.Length > 0)
            .ToList();
        if (series.Count == 0)
        {
            return null;
        }

        var plot = new Plot();
        foreach (var (name, (xs, ys)) in series)
        {
            var line = plot.Add.Scatter(xs, ys);
            line.LegendText = name;
            line.MarkerSize = xs.Length <= 50 ? 5 : 0;
            line.LineWidth = 2;
        }

        plot.Title(chart.Title);
        plot.XLabel("step");
        plot.YLabel(chart.YLabel);
        ChartStyle.UseStepTicks(plot.Axes.Bottom);
        ChartStyle.ShowLegendOutside(plot);
        return plot;
    }

    private static (double[] Xs, double[] Ys) Points(IReadOnlyList<MetricRecord> records, string metric)
    {
        var xs = new List<double>();
        var ys = new List<double>();
        foreach (var r in records)
        {
            if (r.Values.TryGetValue(metric, out var v) && double.IsFinite(v))
            {
                xs.Add(r.Step);
                ys.Add(v);
            }
        }

        return ([.. xs], [.. ys]);
    }
}
