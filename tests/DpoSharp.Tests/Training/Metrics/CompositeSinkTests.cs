using DpoSharp.Data;
using DpoSharp.Tests.Training;
using DpoSharp.Training;
using DpoSharp.Training.Metrics;
using DpoSharp.Training.Engine;

namespace DpoSharp.Tests.Training.Metrics;

public class CompositeSinkTests
{
    public CompositeSinkTests() => DpoSharp.Native.TorchSharpRuntime.EnsureLoadable();

    [Fact]
    public void AnExplicitTargetWithoutAFactoryIsAClearErrorAndWritesNothing()
    {
        using var dir = TestPaths.CreateTempDir();
        var options = new DpoOptions { OutputDir = Path.Combine(dir.Path, "out"), ReportTo = [ReportTarget.Jsonl, ReportTarget.Png] };
        var e = Assert.Throws<DpoSharpException>(() => CompositeMetricSink.FromOptions(options));
        Assert.Contains("report_to png", e.Message);
        Assert.Contains("DpoSharp.Charts", e.Message);
        Assert.Contains("PngChartSink.Factory", e.Message);
        Assert.Contains("MetricSinkFactories", e.Message);
        Assert.False(Directory.Exists(options.OutputDir));

        // A factory for another name does not help.
        Assert.Throws<DpoSharpException>(() => CompositeMetricSink.FromOptions(options, factories: new Dictionary<string, MetricSinkFactory> { ["other"] = _ => new CompositeMetricSink([]) }));
    }

    [Fact]
    public void AllWithoutAFactoryWritesJsonlAndTensorBoardAndNoCharts()
    {
        using var dir = TestPaths.CreateTempDir();
        using (var sink = CompositeMetricSink.FromOptions(new DpoOptions { OutputDir = dir.Path, ReportTo = [ReportTarget.All] }))
        {
            Assert.Equal([typeof(JsonlMetricSink), typeof(TensorBoardMetricSink)], sink.Sinks.Select(s => s.GetType()));
            sink.Log(1, new Dictionary<string, double> { ["loss"] = 0.5 });
        }

        Assert.Single(JsonlMetricSink.Read(Path.Combine(dir.Path, JsonlMetricSink.FileName)));
        Assert.NotEmpty(Directory.GetFiles(Path.Combine(dir.Path, "runs"), "events.out.tfevents.*"));
        Assert.False(Directory.Exists(Path.Combine(dir.Path, "charts")));
    }

    [Fact]
    public void FactoriesGetTheOutputDirTheResumeStepAndTheEarlierRecords()
    {
        using var dir = TestPaths.CreateTempDir();
        var contexts = new List<MetricSinkContext>();
        var factories = new Dictionary<string, MetricSinkFactory>
        {
            ["png"] = c =>
            {
                contexts.Add(c);
                return new CompositeMetricSink([]);
            },
        };
        var options = new DpoOptions { OutputDir = dir.Path, ReportTo = [ReportTarget.Png, ReportTarget.Jsonl] };
        using (var sink = CompositeMetricSink.FromOptions(options, factories: factories))
        {
            Assert.Equal([typeof(JsonlMetricSink), typeof(CompositeMetricSink)], sink.Sinks.Select(s => s.GetType()));
            for (int step = 1; step <= 3; step++)
            {
                sink.Log(step, new Dictionary<string, double> { ["loss"] = step });
            }
        }

        CompositeMetricSink.FromOptions(options, resumeStep: 2, factories).Dispose();
        Assert.Equal(2, contexts.Count);
        Assert.Equal(dir.Path, contexts[0].OutputDir);
        Assert.Null(contexts[0].ResumeStep);
        Assert.Empty(contexts[0].PreviousRecords);
        Assert.Equal(2, contexts[1].ResumeStep);
        Assert.Equal([1L, 2], contexts[1].PreviousRecords.Select(r => r.Step));
        Assert.Equal(2.0, contexts[1].PreviousRecords[1].Values["loss"]);
    }
}

/// <summary>The trainers without a png factory. Trains tiny models: serial torch collection.</summary>
[Collection(nameof(DpoSharp.Tests.Training.TorchRngCollection))]
public class TrainerMetricSinkFactoryTests
{
    [Fact]
    public void TrainersWithoutThePngFactorySkipChartsForAllAndRefuseAnExplicitPng()
    {
        using var dir = TestPaths.CreateTempDir();
        var args = new DpoOptions { OutputDir = Path.Combine(dir.Path, "all"), MaxSteps = 2, PerDeviceTrainBatchSize = 4, LoggingSteps = 1, SaveSteps = 100, LearningRate = 1e-3 };
        using (var model = new TinyCausalLM(seed: 1))
        using (var reference = model.Clone())
        using (var trainer = new DpoTrainer(model, reference, args, TinyData.Pairs(8), padTokenId: 0))
        {
            trainer.Train();
        }

        Assert.Equal(2, JsonlMetricSink.Read(Path.Combine(args.OutputDir, JsonlMetricSink.FileName)).Count);
        Assert.NotEmpty(Directory.GetFiles(Path.Combine(args.OutputDir, "runs"), "events.out.tfevents.*"));
        Assert.False(Directory.Exists(Path.Combine(args.OutputDir, "charts")));

        var png = new DpoOptions { OutputDir = Path.Combine(dir.Path, "png"), MaxSteps = 2, PerDeviceTrainBatchSize = 4, LearningRate = 1e-3, ReportTo = [ReportTarget.Png] };
        using (var model = new TinyCausalLM(seed: 1))
        using (var reference = model.Clone())
        using (var trainer = new DpoTrainer(model, reference, png, TinyData.Pairs(8), padTokenId: 0))
        {
            Assert.Contains("PngChartSink.Factory", Assert.Throws<DpoSharpException>(() => trainer.Train()).Message);
        }

        using (var model = new TinyCausalLM(seed: 1))
        using (var sft = new SftTrainer(model, png, [.. TinyData.Pairs(8).Select(p => new TokenizedCompletion([.. p.PromptIds], [.. p.ChosenIds]))], padTokenId: 0))
        {
            Assert.Contains("PngChartSink.Factory", Assert.Throws<DpoSharpException>(() => sft.Train()).Message);
        }
    }
}
