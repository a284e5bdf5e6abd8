using System.Globalization;
using ScottPlot;
using ScottPlot.Panels;

namespace DpoSharp.Charts;

/// <summary>
/// The conventions every DpoSharp chart follows: legends outside the data area (they never cover a curve or a bar),
/// whole-number ticks on step axes, and percentages with one decimal.
/// </summary>
public static class ChartStyle
{
    /// <summary>Where legends go: in a panel below the axes, outside the data area.</summary>
    public static Edge LegendEdge => Edge.Bottom;

    /// <summary>Formats a fraction as a percentage with one decimal in the invariant culture: 0.95 → <c>95.0%</c>.</summary>
    /// <param name="fraction">The fraction (1 is 100%).</param>
    /// <returns>The percentage text; a value that rounds to zero is <c>0.0%</c>, never <c>-0.0%</c>.</returns>
    public static string Percent(double fraction)
    {
        double percent = Math.Round(fraction * 100, 1, MidpointRounding.AwayFromZero);
        if (percent == 0)
        {
            percent = 0; // no negative zero
        }

        return percent.ToString("F1", CultureInfo.InvariantCulture) + "%";
    }

    /// <summary>
    /// Shows the legend of <paramref name="plot"/> in a panel on <see cref="LegendEdge"/>, outside the data area,
    /// and hides the legend inside the data area.
    /// </summary>
    /// <param name="plot">The plot.</param>
    /// <returns>The legend panel.</returns>
    public static LegendPanel ShowLegendOutside(Plot plot)
    {
        ArgumentNullException.ThrowIfNull(plot);
        var panel = plot.ShowLegend(LegendEdge);
        panel.Padding = new PixelPadding(20, 20, 8, 4);
        plot.Legend.OutlineWidth = 0;
        plot.Legend.ShadowColor = Colors.Transparent;
        plot.Legend.BackgroundColor = Colors.Transparent;
        return panel;
    }

    /// <summary>Gives <paramref name="axis"/> whole-number step ticks (<see cref="StepTickGenerator"/>).</summary>
    /// <param name="axis">A training-step axis.</param>
    public static void UseStepTicks(IAxis axis)
    {
        ArgumentNullException.ThrowIfNull(axis);
        axis.TickGenerator = new StepTickGenerator();
    }
}
