using DpoSharp.Charts;
using DpoSharp.Demo;
using DpoSharp.Tests.Charts;
using ScottPlot;
using ScottPlot.Plottables;

namespace DpoSharp.Tests.Demo;

/// <summary>The demo's bar chart and β frontier: labels, legend placement, and the PNGs written.</summary>
public class DemoChartsTests
{
    private static readonly byte[] PngSignature = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A];

    private static readonly DemoEvaluation Before = new(0.57, 0.43, 0.0, 0.0, 0.0, []);
    private static readonly DemoEvaluation After = new(0.93, 0.06, 0.95, 3.99, 0.82, []);

    public DemoChartsTests() => DpoSharp.Native.TorchSharpRuntime.EnsureLoadable();

    [Fact]
    public void EveryBarIsLabelledWithItsPercentageToOneDecimal()
    {
        using var plot = DemoCharts.TruthfulnessPlot(Before, After);
        var series = plot.GetPlottables().OfType<BarPlot>().ToList();
        Assert.Equal([DemoCharts.AfterSft, DemoCharts.AfterDpo], series.Select(s => s.LegendText));
        Assert.Equal(["57.0%", "43.0%", "0.0%"], series[0].Bars.Select(b => b.Label));
        Assert.Equal(["93.0%", "6.0%", "95.0%"], series[1].Bars.Select(b => b.Label));
        Assert.Equal([57.0, 43, 0], series[0].Bars.Select(b => Math.Round(b.Value, 9)));   // drawn in percent
        Assert.Equal("95.0%", DemoCharts.BarLabel(0.95));

        // Each group: SFT then DPO side by side, the group named under them.
        plot.GetImage(900, 500);
        var sftPositions = series[0].Bars.Select(b => b.Position).ToList();
        Assert.Equal(sftPositions.Select(p => p + 1), series[1].Bars.Select(b => b.Position));
        var ticks = plot.Axes.Bottom.TickGenerator.Ticks;
        Assert.Equal(DemoCharts.TruthfulnessGroups, ticks.Where(t => t.IsMajor).Select(t => t.Label));
        Assert.Equal(sftPositions.Select(p => p + 0.5), ticks.Where(t => t.IsMajor).Select(t => t.Position));

        // Labels above 100% bars stay inside the axes.
        Assert.True(plot.Axes.GetLimits().Top > 105);
        ChartStyleTests.AssertLegendOutsideDataArea(plot, 500, 2);
    }

    [Fact]
    public void FrontierPointsAreLabelledWithBetaAndPercentageInFreeSpots()
    {
        // The README's sweep: β=0.5 and β=0.1 lie close together.
        DemoSweepPoint[] points =
        [
            new(0.05, 0.935, 1.720, 0.96, 6.0), new(0.1, 0.935, 1.149, 0.985, 5.0), new(0.5, 0.95, 1.079, 0.97, 5.4), new(2, 0.96, 0.787, 0.96, 3.0),
        ];
        using var plot = DemoCharts.FrontierPlot(0.465, points);
        var labels = plot.GetPlottables().OfType<Text>().ToList();
        Assert.Equal(["SFT (reference): 46.5%", "β=2: 96.0%", "β=0.5: 95.0%", "β=0.1: 93.5%", "β=0.05: 93.5%"], labels.Select(t => t.LabelText));
        var line = Assert.Single(plot.GetPlottables().OfType<Scatter>());
        var values = line.Data.GetScatterPoints();
        Assert.Equal([46.5, 96, 95, 93.5, 93.5], values.Select(p => Math.Round(p.Y, 9)));

        // As drawn at the PNG's size: every label inside the data area, none over another label, a point or the line.
        plot.GetImage(DemoCharts.FrontierWidth, DemoCharts.FrontierHeight).Dispose();
        using var paint = Paint.NewDisposablePaint();
        var rects = labels.Select(t => new PixelRect(plot.GetPixel(t.Location), t.LabelStyle.Measure(t.LabelText, paint).Size)).ToList();
        PointLabelsTests.AssertFree([.. values.Select(v => plot.GetPixel(v))], rects);
        var area = plot.LastRender.DataRect;
        Assert.All(rects, r => Assert.True(r.Left >= area.Left && r.Right <= area.Right && r.Top >= area.Top && r.Bottom <= area.Bottom, r.ToString()));
    }

    [Fact]
    public void BothChartsAreWrittenAsPngs()
    {
        using var dir = TestPaths.CreateTempDir();
        var bars = DemoCharts.WriteTruthfulness(Path.Combine(dir.Path, "charts", "truthfulness.png"), Before, After);
        var frontier = DemoCharts.WriteFrontier(
            Path.Combine(dir.Path, "charts", "frontier.png"),
            0.57,
            [new DemoSweepPoint(0.05, 0.97, 1.6, 0.97, 6.0), new DemoSweepPoint(0.1, 0.93, 0.82, 0.95, 4.0), new DemoSweepPoint(0.5, 0.74, 0.15, 0.8, 1.1)]);
        foreach (var png in new[] { bars, frontier })
        {
            var bytes = File.ReadAllBytes(png);
            Assert.Equal(PngSignature, bytes[..8]);
            Assert.True(bytes.Length > 5000, $"{png}: {bytes.Length} bytes");
        }
    }
}
