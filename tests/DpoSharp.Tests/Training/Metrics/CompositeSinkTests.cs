using DpoSharp.Training;
using DpoSharp.Training.Metrics;

namespace DpoSharp.Tests.Training.Metrics;

public class CompositeSinkTests
{
    public CompositeSinkTests() => DpoSharp.Native.TorchSharpRuntime.EnsureLoadable();

    [Fact]
    public void ReportToSelectsTheFileSinksAndResumeKeepsEarlierSteps()
    {
        using var dir = TestPaths.CreateTempDir();
        var options = new DpoOptions { OutputDir = dir.Path, ReportTo = ["all"] };
        using (var sink = CompositeMetricSink.FromOptions(options))
        {
            Assert.Equal([typeof(JsonlMetricSink), typeof(TensorBoardMetricSink), typeof(PngChartSink)], sink.Sinks.Select(s => s.GetType()));
            for (int step = 1; step <= 4; step++)
            {
                sink.Log(step, new Dictionary<string, double> { ["loss"] = 1.0 / step });
            }
        }

        Assert.True(File.Exists(Path.Combine(dir.Path, "charts", "loss.png")));
        Assert.NotEmpty(Directory.GetFiles(Path.Combine(dir.Path, "runs"), "events.out.tfevents.*"));

        // Resume at step 2: steps 3-4 are dropped and rewritten.
        using (var resumed = CompositeMetricSink.FromOptions(options, resumeStep: 2))
        {
            resumed.Log(3, new Dictionary<string, double> { ["loss"] = 0.3 });
        }

        var records = JsonlMetricSink.Read(Path.Combine(dir.Path, JsonlMetricSink.FileName));
        Assert.Equal([1L, 2, 3], records.Select(r => r.Step));
        Assert.Equal(0.3, records[2].Values["loss"]);

        var none = CompositeMetricSink.FromOptions(new DpoOptions { OutputDir = dir.Path, ReportTo = ["none"] });
        Assert.Empty(none.Sinks);
        var jsonOnly = CompositeMetricSink.FromOptions(new DpoOptions { OutputDir = dir.Path, ReportTo = ["jsonl", "console"] });
        Assert.Equal([typeof(JsonlMetricSink)], jsonOnly.Sinks.Select(s => s.GetType()));
        jsonOnly.Dispose();
    }
}
