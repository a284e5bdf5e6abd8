using System.Globalization;
using DpoSharp.Charts;
using DpoSharp.Training.Metrics;
using ScottPlot;
using ScottPlot.Panels;

namespace DpoSharp.Tests.Charts;

/// <summary>The chart conventions, checked without looking at pixels: step ticks, percentages, legend placement.</summary>
public class ChartStyleTests
{
    public ChartStyleTests() => DpoSharp.Native.TorchSharpRuntime.EnsureLoadable();

    [Theory]
    [InlineData(0.95, "95.0%")]
    [InlineData(0.5, "50.0%")]
    [InlineData(1.0, "100.0%")]
    [InlineData(0.0, "0.0%")]
    [InlineData(0.123, "12.3%")]
    [InlineData(0.06, "6.0%")]
    [InlineData(0.9996, "100.0%")]
    [InlineData(-0.0001, "0.0%")]   // rounds to zero: never "-0.0%"
    public void PercentHasOneDecimal(double fraction, string expected)
    {
        Assert.Equal(expected, ChartStyle.Percent(fraction));
    }

    [Fact]
    public void PercentIgnoresTheCurrentCulture()
    {
        var saved = CultureInfo.CurrentCulture;
        try
        {
            CultureInfo.CurrentCulture = CultureInfo.GetCultureInfo("de-DE");
            Assert.Equal("95.0%", ChartStyle.Percent(0.95));
        }
        finally
        {
            CultureInfo.CurrentCulture = saved;
        }
    }

    [Theory]
    [InlineData(0, 25, 3, new long[] { 0, 10, 20 })]            // a decimal axis would put a tick at 12.5
    [InlineData(-1.2, 26.2, 10, new long[] { 0, 5, 10, 15, 20, 25 })]
    [InlineData(0.8, 4.2, 10, new long[] { 1, 2, 3, 4 })]       // few steps: one tick per step, no 0.5
    [InlineData(4.9, 5.1, 10, new long[] { 5 })]                // one logged step
    [InlineData(0, 250, 10, new long[] { 0, 50, 100, 150, 200, 250 })]
    [InlineData(250, 0, 10, new long[] { 0, 50, 100, 150, 200, 250 })]   // inverted range
    public void StepTicksAreWholeSteps(double min, double max, int maxTicks, long[] expected)
    {
        Assert.Equal(expected, StepTickGenerator.Positions(min, max, maxTicks));
    }

    [Fact]
    public void StepTicksAreWholeEvenlySpacedAndFewEnoughOnAnyRange()
    {
        var rng = new Random(5);
        for (int i = 0; i < 2000; i++)
        {
            double span = Math.Pow(10, rng.NextDouble() * 7) * rng.NextDouble();
            double min = (rng.NextDouble() - 0.2) * 1000;
            int maxTicks = rng.Next(2, 15);
            var ticks = StepTickGenerator.Positions(min, min + span, maxTicks);
            long spacing = StepTickGenerator.Spacing(span, maxTicks);
            Assert.Contains(spacing / (long)Math.Pow(10, Math.Floor(Math.Log10(spacing))), new long[] { 1, 2, 5 });
            Assert.InRange(ticks.Count, span >= spacing ? 1 : 0, maxTicks);
            Assert.All(ticks, t => Assert.InRange(t, min, min + span));
            Assert.All(ticks, t => Assert.Equal(0, t % spacing));
            Assert.All(ticks.Zip(ticks.Skip(1)), p => Assert.Equal(spacing, p.Second - p.First));
        }

        Assert.Empty(StepTickGenerator.Positions(double.NaN, 3, 5));
        Assert.Empty(StepTickGenerator.Positions(0, double.PositiveInfinity, 5));
    }

    [Fact]
    public void TheRenderedStepAxisOfAShortRunHasOnlyWholeStepTicks()
    {
        // Steps 1..4: ScottPlot's decimal ticks would be 1, 1.5, 2, 2.5, …
        var records = Enumerable.Range(1, 4).Select(s => new MetricRecord(s, new Dictionary<string, double> { ["loss"] = 1.0 / s })).ToList();
        using var plot = PngChartWriter.Build(records, PngChartWriter.DefaultCharts[0])!;
        plot.GetImage(PngChartWriter.DefaultWidth, PngChartWriter.DefaultHeight);

        var ticks = plot.Axes.Bottom.TickGenerator.Ticks.Where(t => t.IsMajor).ToList();
        Assert.IsType<StepTickGenerator>(plot.Axes.Bottom.TickGenerator);
        Assert.Equal([1.0, 2, 3, 4], ticks.Select(t => t.Position));
        Assert.Equal(["1", "2", "3", "4"], ticks.Select(t => t.Label));
    }

    [Fact]
    public void TheLegendIsInAPanelBelowTheAxesNotInTheDataArea()
    {
        var records = Enumerable.Range(1, 8).Select(s => new MetricRecord(s, new Dictionary<string, double>
        {
            ["rewards/chosen"] = 0.1 * s,
            ["rewards/rejected"] = -0.1 * s,
            ["eval_rewards/chosen"] = 0.1 * s,
            ["eval_rewards/rejected"] = -0.1 * s,
        })).ToList();
        using var plot = PngChartWriter.Build(records, PngChartWriter.DefaultCharts[3])!;
        plot.GetImage(PngChartWriter.DefaultWidth, PngChartWriter.DefaultHeight);
        AssertLegendOutsideDataArea(plot, PngChartWriter.DefaultHeight, 4);
    }

    /// <summary>
    /// The legend inside the data area is hidden, and one legend panel on <see cref="ChartStyle.LegendEdge"/> (below
    /// the axes) lists <paramref name="items"/> entries; after a render, that panel lies between the bottom axis and
    /// the figure's lower edge.
    /// </summary>
    internal static void AssertLegendOutsideDataArea(Plot plot, int height, int items)
    {
        Assert.Equal(Edge.Bottom, ChartStyle.LegendEdge);
        Assert.False(plot.Legend.IsVisible);
        var panel = Assert.Single(plot.Axes.GetPanels().OfType<LegendPanel>());
        Assert.Equal(ChartStyle.LegendEdge, panel.Edge);
        Assert.Equal(items, plot.Legend.GetItems().Length);

        var layout = plot.LastRender.Layout;
        float legendOffset = layout.PanelOffsets[panel];
        float legendSize = layout.PanelSizes[panel];
        float axisEnd = layout.PanelOffsets[plot.Axes.Bottom] + layout.PanelSizes[plot.Axes.Bottom];
        Assert.True(legendSize > 0);
        Assert.True(legendOffset >= axisEnd, $"legend at {legendOffset} px below the data area, inside the bottom axis (ends at {axisEnd})");
        Assert.True(layout.DataRect.Bottom + legendOffset + legendSize <= height + 0.5, "legend beyond the figure");
    }
}
