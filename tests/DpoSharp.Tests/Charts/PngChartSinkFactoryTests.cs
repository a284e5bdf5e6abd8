using DpoSharp.Charts;
using DpoSharp.Data;
using DpoSharp.Tests.Training;
using DpoSharp.Training;
using DpoSharp.Training.Metrics;
using DpoSharp.Training.Engine;

namespace DpoSharp.Tests.Charts;

/// <summary><c>report_to: png</c> through <see cref="PngChartSink.Factory"/>. Trains tiny models: serial torch collection.</summary>
[Collection(nameof(TorchRngCollection))]
public class PngChartSinkFactoryTests
{
    private static readonly Dictionary<string, MetricSinkFactory> Factories = new() { ["png"] = PngChartSink.Factory };

    public PngChartSinkFactoryTests() => DpoSharp.Native.TorchSharpRuntime.EnsureLoadable();

    [Fact]
    public void ReportToSelectsTheFileSinksAndResumeKeepsEarlierSteps()
    {
        using var dir = TestPaths.CreateTempDir();
        var options = new DpoOptions { OutputDir = dir.Path, ReportTo = [ReportTarget.All] };
        using (var sink = CompositeMetricSink.FromOptions(options, factories: Factories))
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
        using (var resumed = CompositeMetricSink.FromOptions(options, resumeStep: 2, Factories))
        {
            resumed.Log(3, new Dictionary<string, double> { ["loss"] = 0.3 });
        }

        var records = JsonlMetricSink.Read(Path.Combine(dir.Path, JsonlMetricSink.FileName));
        Assert.Equal([1L, 2, 3], records.Select(r => r.Step));
        Assert.Equal(0.3, records[2].Values["loss"]);

        var none = CompositeMetricSink.FromOptions(new DpoOptions { OutputDir = dir.Path, ReportTo = [ReportTarget.None] });
        Assert.Empty(none.Sinks);
        var jsonOnly = CompositeMetricSink.FromOptions(new DpoOptions { OutputDir = dir.Path, ReportTo = [ReportTarget.Jsonl, ReportTarget.Console] });
        Assert.Equal([typeof(JsonlMetricSink)], jsonOnly.Sinks.Select(s => s.GetType()));
        jsonOnly.Dispose();
    }

    [Fact]
    public void TheFactoryDrawsIntoOutputDirChartsIncludingEarlierRecords()
    {
        using var dir = TestPaths.CreateTempDir();
        var previous = new[] { 1, 2 }.Select(s => new MetricRecord(s, new Dictionary<string, double> { ["loss"] = 1.0 / s })).ToList();
        var sink = Assert.IsType<PngChartSink>(PngChartSink.Factory(new MetricSinkContext(dir.Path, 2, previous)));
        sink.Close();   // nothing logged since the resume: the earlier records alone make the loss chart
        Assert.Equal([Path.Combine(dir.Path, "charts", "loss.png")], sink.Written);
        Assert.True(File.Exists(sink.Written[0]));
    }

    [Fact]
    public void TrainersDrawChartsWithThePngFactory()
    {
        using var dir = TestPaths.CreateTempDir();
        var dpoArgs = new DpoOptions { OutputDir = Path.Combine(dir.Path, "dpo"), MaxSteps = 2, PerDeviceTrainBatchSize = 4, LoggingSteps = 1, SaveSteps = 100, LearningRate = 1e-3 };
        using (var model = new TinyCausalLM(seed: 1))
        using (var reference = model.Clone())
        using (var dpo = new DpoTrainer(model, reference, dpoArgs, TinyData.Pairs(8), padTokenId: 0) { MetricSinkFactories = { ["png"] = PngChartSink.Factory } })
        {
            dpo.Train();
        }

        Assert.True(File.Exists(Path.Combine(dpoArgs.OutputDir, "charts", "loss.png")));
        Assert.True(File.Exists(Path.Combine(dpoArgs.OutputDir, DpoTrainer.MetricsFileName)));

        var sftArgs = new DpoOptions { OutputDir = Path.Combine(dir.Path, "sft"), MaxSteps = 2, PerDeviceTrainBatchSize = 4, LoggingSteps = 1, LearningRate = 1e-3, ReportTo = [ReportTarget.Png] };
        using (var model = new TinyCausalLM(seed: 1))
        using (var sft = new SftTrainer(model, sftArgs, [.. TinyData.Pairs(8).Select(p => new TokenizedCompletion([.. p.PromptIds], [.. p.ChosenIds]))], padTokenId: 0) { MetricSinkFactories = { ["png"] = PngChartSink.Factory } })
        {
            sft.Train();
        }

        Assert.True(File.Exists(Path.Combine(sftArgs.OutputDir, "charts", "loss.png")));
        Assert.True(File.Exists(Path.Combine(sftArgs.OutputDir, JsonlMetricSink.FileName)));   // metrics.jsonl is always on (issue 10)
    }
}
