using DpoSharp.Training.Engine;
using System.Text.RegularExpressions;
using DpoSharp.Cli.Commands;
using DpoSharp.Cli.Terminal;
using DpoSharp.Training;

namespace DpoSharp.Tests.Cli.Terminal;

/// <summary>A real (tiny) run through the live display on an 80-column terminal.</summary>
[Collection(nameof(DpoSharp.Tests.Training.TorchRngCollection))]
public class TrainingProgressTests
{
    [Fact]
    public void ALiveRunAt80ColumnsShowsTheLabelledRowAndTheMetricLines()
    {
        using var dir = TestPaths.CreateTempDir();
        var (console, output) = TestTerminal.Create(80);
        using var model = new TinyCausalLM(seed: 2);
        using var reference = model.Clone();
        var args = new DpoOptions { OutputDir = dir.Path, MaxSteps = 6, LoggingSteps = 2, PerDeviceTrainBatchSize = 2, LearningRate = 1e-2, ReportTo = [ReportTarget.None] };
        using var trainer = new DpoTrainer(model, reference, args, TinyData.Pairs(8), padTokenId: 0);
        var display = new TrainingDisplay("train", "pairs/s", e => TrainCommand.FormatLine(e, trainer.TotalSteps));

        var result = TrainingProgress.Run(console, trainer.Loop, display, CancellationToken.None, () => trainer.Train());

        Assert.Equal(6, result.GlobalStep);
        var lines = TestTerminal.Lines(output.ToString());
        var row = lines.Last(l => l.StartsWith("train ", StringComparison.Ordinal));
        Assert.Matches(@"^train ━+ step 6/6 100% elapsed \d:\d\d:\d\d eta 0:00:00 +\d+(\.\d+)? pairs/s$", row);
        Assert.True(row.Length <= 80, row);
        foreach (var step in new[] { 2, 4, 6 })
        {
            Assert.Contains(lines, l => Regex.IsMatch(l, $@"^step {step}/6  loss \d\.\d{{4}}  acc"));
        }
    }
}
