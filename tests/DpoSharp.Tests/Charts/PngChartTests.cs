using System.Buffers.Binary;
using System.Text;
using DpoSharp.Charts;
using DpoSharp.Training.Metrics;
using SkiaSharp;

namespace DpoSharp.Tests.Charts;

public class PngChartTests
{
    public PngChartTests() => DpoSharp.Native.TorchSharpRuntime.EnsureLoadable();

    private static Dictionary<string, double> Step(int i) => SampleMetrics.Step(i);

    [Fact]
    public void PngChartsAreRealImagesWithPlottedLines()
    {
        using var dir = TestPaths.CreateTempDir();
        var jsonl = Path.Combine(dir.Path, "metrics.jsonl");
        using (var sink = new JsonlMetricSink(jsonl))
        {
            for (int i = 1; i <= 8; i++)
            {
                var m = Step(i);
                if (i % 4 == 0)
                {
                    m["eval_loss"] = 0.7 - (0.04 * i);
                    m["eval_rewards/margins"] = 0.02 * i;
                }

                sink.Log(i, m);
            }
        }

        var written = PngChartWriter.WriteFromJsonl(jsonl, Path.Combine(dir.Path, "charts"));
        Assert.Equal(["loss.png", "rewards_margins.png", "rewards_accuracies.png", "rewards_chosen_rejected.png"], written.Select(Path.GetFileName));
        foreach (var png in written)
        {
            var bytes = File.ReadAllBytes(png);
            Assert.Equal(new byte[] { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A }, bytes[..8]);
            Assert.Equal("IHDR", Encoding.ASCII.GetString(bytes, 12, 4));
            Assert.Equal(PngChartWriter.DefaultWidth, BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(16)));
            Assert.Equal(PngChartWriter.DefaultHeight, BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(20)));
            Assert.True(bytes.Length > 5000, $"{png}: {bytes.Length} bytes");
        }

        // Decode the loss chart: the plot area holds many strongly coloured (non-grey) pixels: the lines.
        using var bitmap = SKBitmap.Decode(written[0]);
        int coloured = 0;
        for (int y = 0; y < bitmap.Height; y++)
        {
            for (int x = 0; x < bitmap.Width; x++)
            {
                var c = bitmap.GetPixel(x, y);
                if (Math.Max(Math.Max(c.Red, c.Green), c.Blue) - Math.Min(Math.Min(c.Red, c.Green), c.Blue) > 60)
                {
                    coloured++;
                }
            }
        }

        Assert.True(coloured > 500, $"only {coloured} coloured pixels");

        // Nothing to draw: no file.
        Assert.Empty(PngChartWriter.Write([new MetricRecord(1, new Dictionary<string, double> { ["other"] = 1 })], Path.Combine(dir.Path, "empty")));
    }

    [Fact]
    public void PngChartSinkDrawsOnClose()
    {
        using var dir = TestPaths.CreateTempDir();
        var sink = new PngChartSink(dir.Path);
        sink.Log(1, Step(1));
        sink.Log(2, Step(2));
        Assert.Empty(Directory.GetFiles(dir.Path));
        sink.Close();
        Assert.Equal(4, sink.Written.Count);
        Assert.All(sink.Written, f => Assert.True(File.Exists(f)));
        Assert.Throws<ObjectDisposedException>(() => sink.Log(3, Step(3)));
    }
}
