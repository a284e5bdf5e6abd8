using System.Runtime.InteropServices;
using DpoSharp.Distributed;
using DpoSharp.Training.Engine;
using static TorchSharp.torch;

namespace DpoSharp.Tests.Distributed;

/// <summary>The parts of data parallelism that need no MPI: launcher detection, bucketing, statistics reduction.</summary>
public class DataParallelPiecesTests
{
    private static Func<string, string?> Env(params (string Name, string Value)[] vars) => n => vars.FirstOrDefault(v => v.Name == n).Value;

    [Fact]
    public void OpenMpiVariablesGiveTheWorldTheRankAndTheThreadsPerLocalProcess()
    {
        var e = LaunchEnvironment.From(Env(("OMPI_COMM_WORLD_SIZE", "4"), ("OMPI_COMM_WORLD_RANK", "3"), ("OMPI_COMM_WORLD_LOCAL_RANK", "1"), ("OMPI_COMM_WORLD_LOCAL_SIZE", "2"), ("PMIX_RANK", "3")));
        Assert.Equal(new LaunchEnvironment(true, 4, 3, 1, 2), e);
        Assert.True(e.IsMultiProcess);
        Assert.Equal(Math.Max(1, DpoSharp.Diagnostics.CpuTopology.PhysicalCores() / 2), e.DefaultThreads());
    }

    [Fact]
    public void PmiVariablesAndPmixRankAloneAreLaunches()
    {
        Assert.Equal(new LaunchEnvironment(true, 3, 2, 0, 1), LaunchEnvironment.From(Env(("PMI_SIZE", "3"), ("PMI_RANK", "2"))));

        // PMIx gives only the rank: the size comes from MPI itself.
        var pmix = LaunchEnvironment.From(Env(("PMIX_RANK", "0")));
        Assert.True(pmix.IsMultiProcess);
        Assert.Null(pmix.Size);
    }

    [Fact]
    public void NoLauncherOrAWorldOfOneIsOneProcessAndNeverLoadsMpi()
    {
        var none = LaunchEnvironment.From(_ => null);
        Assert.Same(LaunchEnvironment.Single, none);
        Assert.False(none.IsMultiProcess);
        Assert.Equal(DpoSharp.Diagnostics.CpuTopology.PhysicalCores(), none.DefaultThreads()); // alone: every core, as before
        var one = LaunchEnvironment.From(Env(("OMPI_COMM_WORLD_SIZE", "1"), ("OMPI_COMM_WORLD_RANK", "0")));
        Assert.False(one.IsMultiProcess);
        Assert.Null(MpiWorld.Initialize(one));                // returns before touching libmpi
        Assert.Null(MpiWorld.Initialize(none));
    }

    [Fact]
    public void InconsistentLauncherVariablesAreNamed()
    {
        var e = Assert.Throws<DpoSharpException>(() => LaunchEnvironment.From(Env(("OMPI_COMM_WORLD_SIZE", "2"), ("OMPI_COMM_WORLD_RANK", "2"))));
        Assert.Contains("rank 2 of world size 2", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<DpoSharpException>(() => LaunchEnvironment.From(Env(("PMI_SIZE", "two"))));
        Assert.Contains("PMI_SIZE=two", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void BucketsSpanTensorsAndTensorsSpanBucketsAndEveryElementComesBack()
    {
        using var scope = NewDisposeScope();
        using var buckets = new FlatBuckets(bucketBytes: 1024);   // 256 float32 per bucket
        var tensors = new[] { arange(3, dtype: ScalarType.Float32), arange(1000, dtype: ScalarType.Float32).reshape(10, 100), arange(5, dtype: ScalarType.BFloat16) };
        var before = tensors.Select(t => t.to(ScalarType.Float64).clone()).ToArray();
        var counts = new List<int>();

        // The "collective" doubles every element of the bucket in place, through the pointer MPI would get.
        buckets.Transfer(tensors, ScalarType.Float32, (ptr, n) =>
        {
            counts.Add(n);
            var values = new float[n];
            Marshal.Copy(ptr, values, 0, n);
            Marshal.Copy(values.Select(v => 2 * v).ToArray(), 0, ptr, n);
        });

        Assert.Equal([256, 256, 256, 240], counts);                // 1008 elements in 256-element buckets
        for (int i = 0; i < tensors.Length; i++)
        {
            Assert.Equal(before[i].mul(2).data<double>().ToArray(), tensors[i].to(ScalarType.Float64).data<double>().ToArray());
        }

        Assert.Equal(ScalarType.BFloat16, tensors[2].dtype);      // dtype kept, values written back
    }

    [Fact]
    public void StatisticsSummedOverRanksKeepTheirMeansAndAddTheirCounts()
    {
        using var stats = new NamedStatistics();
        stats.Add("loss", tensor(3.0f), "pairs");
        stats.Add("rewards/accuracies", tensor(1.0f), "pairs");
        stats.AddCount("pairs", 2);

        // Two ranks with identical windows: sums and counts double, so every mean is unchanged.
        stats.SumAcrossRanks(new TwoIdenticalRanks());
        var m = stats.ToMetrics("");
        Assert.Equal(1.5, m["loss"]);
        Assert.Equal(0.5, m["rewards/accuracies"]);
        Assert.Equal(4, stats.Count("pairs"));
    }

    /// <summary>Two ranks holding the same values: every sum doubles.</summary>
    private sealed class TwoIdenticalRanks : IProcessGroup
    {
        public int Rank => 0;

        public int WorldSize => 2;

        public void SumInPlace(Span<double> values)
        {
            for (int i = 0; i < values.Length; i++)
            {
                values[i] *= 2;
            }
        }

        public void SumInPlace(IReadOnlyList<Tensor> tensors)
        {
            foreach (var t in tensors)
            {
                t.mul_(2);
            }
        }

        public void Broadcast(IReadOnlyList<Tensor> tensors)
        {
        }
    }
}
