using System.Diagnostics;
using DpoSharp.Data;
using DpoSharp.Models;
using DpoSharp.Training;
using DpoSharp.Training.Engine;
using TorchSharp;
using static TorchSharp.torch;

namespace DpoSharp.Diagnostics;

/// <summary>What <see cref="MpiBenchmark.Run"/> measured on one world size.</summary>
/// <param name="WorldSize">Processes.</param>
/// <param name="Step">The data-parallel DPO step (each rank <see cref="BenchmarkOptions.Pairs"/> pairs).</param>
/// <param name="GradientBytes">Bytes all-reduced per step: the trainable parameters in float32.</param>
/// <param name="AllReduceSeconds">Mean wall time of one all-reduce of <paramref name="GradientBytes"/> (averaged
/// over ranks and repeats); null with one process.</param>
/// <param name="NetworkBytesPerSecond">The link bandwidth the projection assumes (bytes/s).</param>
public sealed record MpiBenchmarkResult(int WorldSize, BenchmarkResult Step, long GradientBytes, double? AllReduceSeconds, double NetworkBytesPerSecond)
{
    /// <summary>Global pairs per second: every rank's pairs over the step time.</summary>
    public double GlobalPairsPerSecond => WorldSize * Step.PairsPerSecond;

    /// <summary>Algorithm bandwidth of the all-reduce: gradient bytes per second of all-reduce time.</summary>
    public double? AllReduceBytesPerSecond => AllReduceSeconds is double s ? GradientBytes / s : null;

    /// <summary>Bus bandwidth (NCCL's convention): each rank sends and receives 2(N − 1)/N of the buffer in a ring
    /// all-reduce, so this is the per-link bandwidth the all-reduce achieved.</summary>
    public double? BusBytesPerSecond => AllReduceBytesPerSecond is double b ? b * 2.0 * (WorldSize - 1) / WorldSize : null;

    /// <summary>
    /// Projected seconds per step on <paramref name="machines"/> machines of this one's speed joined by links of
    /// <see cref="NetworkBytesPerSecond"/>: the one-machine compute time (this run's step minus its all-reduce) plus a
    /// ring all-reduce, 2(N − 1)/N × gradient bytes over the link. No overlap of compute and communication is assumed
    /// (DpoSharp reduces after the backward).
    /// </summary>
    public double ProjectedSecondsPerStep(int machines, double computeSecondsPerStep)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(machines, 1);
        return computeSecondsPerStep + (machines == 1 ? 0 : 2.0 * (machines - 1) / machines * GradientBytes / NetworkBytesPerSecond);
    }
}

/// <summary>
/// <c>dposharp bench --mpi</c>: the DPO benchmark step as one rank of a data-parallel world (alone: one process),
/// plus the measured all-reduce time of a gradient-sized float32 buffer. Run it once alone and once under
/// <c>mpirun -np 2</c> to see the scaling; the projection to N machines combines the one-process compute time with
/// a ring all-reduce over a given link bandwidth.
/// </summary>
public static class MpiBenchmark
{
    /// <summary>Runs the step benchmark in <paramref name="group"/>, then times <paramref name="repeats"/> all-reduces
    /// of the gradient size (after one warm-up). Every rank must call it.</summary>
    /// <param name="options">The step to time.</param>
    /// <param name="group">The processes (<see cref="SingleProcessGroup"/> alone).</param>
    /// <param name="networkBytesPerSecond">Link bandwidth for the projection (bytes/s).</param>
    /// <param name="repeats">Timed all-reduces.</param>
    /// <param name="progress">Each finished step (1 = warm-up).</param>
    public static MpiBenchmarkResult Run(BenchmarkOptions options, IProcessGroup group, double networkBytesPerSecond, int repeats = 5, Action<int, int>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(group);
        ArgumentOutOfRangeException.ThrowIfLessThan(repeats, 1);
        if (!(networkBytesPerSecond > 0))
        {
            throw new DpoSharpException($"--network-gbps must be positive, got {networkBytesPerSecond / 1.25e8}.");
        }

        var step = TrainerSteps(options, group, progress);
        long bytes = 4 * step.TrainableParameters;
        double? seconds = null;
        if (group.WorldSize > 1)
        {
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            var buffer = ones(step.TrainableParameters); // (P) a gradient's worth of float32
            group.SumInPlace([buffer]);                  // warm-up (connections, buffers)
            var sw = Stopwatch.StartNew();
            for (int i = 0; i < repeats; i++)
            {
                group.SumInPlace([buffer]);
            }

            Span<double> mean = [sw.Elapsed.TotalSeconds / repeats];
            group.SumInPlace(mean);
            seconds = mean[0] / group.WorldSize;
        }

        return new MpiBenchmarkResult(group.WorldSize, step, bytes, seconds, networkBytesPerSecond);
    }

    /// <summary>Times <see cref="BenchmarkOptions.Steps"/> optimizer steps (after a warm-up) of a
    /// <see cref="DpoTrainer"/> that is one rank of <paramref name="group"/>: the whole data-parallel step, gradient
    /// all-reduce included. Every rank trains on its <see cref="BenchmarkOptions.Pairs"/> of the same synthetic pairs.</summary>
    private static BenchmarkResult TrainerSteps(BenchmarkOptions options, IProcessGroup group, Action<int, int>? progress)
    {
        options.Validate();
        var plan = DpoStepBenchmark.Plan(options);
        var estimate = MemoryEstimator.Estimate(plan);
        MemoryEstimator.ThrowIfTooLarge(estimate, ProcMemory.AvailableBytes(), MemoryEstimator.Fixes(plan, "--pairs", "--prompt-len / --completion-len", "--cached-reference", "--lora"));
        var rng = new Random(0);
        int vocab = plan.Config.VocabSize;
        int[] Tokens(int n) => [.. Enumerable.Range(0, n).Select(_ => rng.Next(vocab))];
        var pairs = Enumerable.Range(0, options.Pairs * group.WorldSize * (options.Steps + 1))
            .Select(i => new TokenizedPair(Tokens(options.PromptLength), Tokens(options.CompletionLength), Tokens(options.CompletionLength)) { SourceIndex = i })
            .ToList();
        var output = Directory.CreateTempSubdirectory("dposharp-bench-mpi-").FullName;
        try
        {
            var dtype = options.UsePeft ? options.Memory.TorchScalarType : ScalarType.Float32;
            using var model = ModelLoader.Create(plan.Config, new Device(options.Device), seed: 0, dtype);
            using var trainer = new DpoTrainer(model, refModel: null, options.ToDpoOptions(output), pairs, padTokenId: 0);
            if (group.WorldSize > 1)
            {
                trainer.ProcessGroup = group;
            }

            var times = new List<double>();
            var sw = Stopwatch.StartNew();
            trainer.StepCompleted += (step, total) =>
            {
                times.Add(sw.Elapsed.TotalSeconds);
                progress?.Invoke(step, total);
                sw.Restart();
            };
            trainer.Train();
            long trainable = model.Module.parameters().Where(p => p.requires_grad).Sum(p => p.numel());
            return new BenchmarkResult(options, plan.Parameters, trainable, torch.get_num_threads(), times.Skip(1).Average(), times[0], ProcMemory.PeakRssBytes(), estimate, plan.GradientCheckpointing);
        }
        finally
        {
            Directory.Delete(output, recursive: true);
        }
    }
}
