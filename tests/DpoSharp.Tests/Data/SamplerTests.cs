using DpoSharp.Data;

namespace DpoSharp.Tests.Data;

public class SamplerTests
{
    private static int[] Lengths(int n, int seed)
    {
        var lengths = new int[n];
        var x = (uint)seed;
        for (var i = 0; i < n; i++)
        {
            x = (x * 1664525) + 1013904223;
            lengths[i] = 5 + (int)(x >> 24) % 300;
        }

        return lengths;
    }

    private static void AssertEpochCoversAll(BatchSampler s, int epoch, int count)
    {
        var all = s.EpochBatches(epoch).SelectMany(b => b).Order().ToArray();
        Assert.Equal(Enumerable.Range(0, count), all);
    }

    [Fact]
    public void RandomSamplerIsDeterministicPerSeedAndEpoch()
    {
        var a = new RandomBatchSampler(23, 4, seed: 42);
        var b = new RandomBatchSampler(23, 4, seed: 42);
        var c = new RandomBatchSampler(23, 4, seed: 43);
        Assert.Equal(6, a.BatchesPerEpoch);
        Assert.Equal(a.EpochBatches(0), b.EpochBatches(0));
        Assert.Equal(a.EpochBatches(3), b.EpochBatches(3));
        Assert.NotEqual(a.EpochBatches(0), a.EpochBatches(1));
        Assert.NotEqual(a.EpochBatches(0), c.EpochBatches(0));
        AssertEpochCoversAll(a, 0, 23);
        AssertEpochCoversAll(a, 1, 23);
        Assert.Equal(3, a.EpochBatches(0)[^1].Length);
        Assert.Equal(new[] { 0, 1, 2, 3 }, new RandomBatchSampler(23, 4, 42, shuffle: false).EpochBatches(0)[0]);
    }

    [Fact]
    public void DropLastDropsThePartialBatch()
    {
        var s = new RandomBatchSampler(23, 4, 1, dropLast: true);
        Assert.Equal(5, s.BatchesPerEpoch);
        Assert.All(s.EpochBatches(0), b => Assert.Equal(4, b.Length));
    }

    [Theory]
    [InlineData(0, 0)]
    [InlineData(0, 4)]
    [InlineData(1, 2)]
    [InlineData(2, 5)]
    public void ResumeYieldsExactlyTheRemainingBatches(int epoch, int batch)
    {
        foreach (BatchSampler s in new BatchSampler[] { new RandomBatchSampler(23, 4, 7), LengthGroupedSampler.For(Enumerable.Range(0, 23).Select(i => new TokenizedPair(new int[i % 5], new int[1 + (i % 7)], [1])).ToArray(), 4, 7) })
        {
            var full = s.Iterate(new SamplerPosition(0, 0), epochs: 3).ToList();
            var resumed = s.Iterate(new SamplerPosition(epoch, batch), epochs: 3).ToList();
            var skip = (epoch * s.BatchesPerEpoch) + batch;
            Assert.Equal(full.Count - skip, resumed.Count);
            Assert.Equal(full.Skip(skip).Select(x => x.Position), resumed.Select(x => x.Position));
            Assert.Equal(full.Skip(skip).Select(x => x.Batch), resumed.Select(x => x.Batch));

            // A fresh sampler (a restarted process) gives the same batches.
            Assert.Equal(resumed[0].Batch, s.EpochBatches(epoch)[batch]);
        }
    }

    [Fact]
    public void LengthGroupedBatchesHoldNeighbouringLengthsAndCutPadding()
    {
        var lengths = Lengths(200, 3);
        var grouped = new LengthGroupedSampler(lengths, 8, seed: 5, megaBatchFactor: 100);
        var random = new RandomBatchSampler(200, 8, seed: 5);
        AssertEpochCoversAll(grouped, 0, 200);
        AssertEpochCoversAll(grouped, 1, 200);

        // One mega-batch covers everything: the batches are consecutive runs of the lengths sorted longest first.
        var sorted = lengths.OrderDescending().ToArray();
        var runs = Enumerable.Range(0, 25).Select(i => string.Join(",", sorted.Skip(i * 8).Take(8))).ToHashSet();
        Assert.All(grouped.EpochBatches(0), b => Assert.Contains(string.Join(",", b.Select(i => lengths[i]).OrderDescending()), runs));

        // The batch holding the longest pair comes first.
        Assert.Equal(sorted[0], grouped.EpochBatches(0)[0].Max(i => lengths[i]));

        long Padding(BatchSampler s) => s.EpochBatches(0).Sum(b => (long)(b.Max(i => lengths[i]) * b.Length) - b.Sum(i => lengths[i]));
        Assert.True(Padding(grouped) * 4 < Padding(random), $"grouped {Padding(grouped)} vs random {Padding(random)}");

        // Deterministic, and epochs differ.
        Assert.Equal(grouped.EpochBatches(2), new LengthGroupedSampler(lengths, 8, seed: 5, megaBatchFactor: 100).EpochBatches(2));
        Assert.NotEqual(grouped.EpochBatches(0), grouped.EpochBatches(1));
    }

    [Fact]
    public void SmallMegaBatchesSortOnlyWithinThemselves()
    {
        var lengths = Lengths(64, 9);
        var s = new LengthGroupedSampler(lengths, 4, seed: 11, megaBatchFactor: 2);
        AssertEpochCoversAll(s, 0, 64);
        Assert.All(s.EpochBatches(0), b => Assert.Equal(4, b.Length));
    }

    [Fact]
    public void RanksGetDisjointSharesOfEachGlobalBatch()
    {
        foreach (var make in new Func<int, BatchSampler>[]
        {
            rank => new RandomBatchSampler(21, 3, 9, worldSize: 2, rank: rank),
            rank => new LengthGroupedSampler(Lengths(21, 1), 3, 9, worldSize: 2, rank: rank),
        })
        {
            var r0 = make(0);
            var r1 = make(1);
            Assert.Equal(r0.BatchesPerEpoch, r1.BatchesPerEpoch);
            Assert.Equal(4, r0.BatchesPerEpoch); // 21 pairs / (3 x 2)
            var b0 = r0.EpochBatches(0);
            var b1 = r1.EpochBatches(0);
            for (var i = 0; i < 4; i++)
            {
                Assert.Empty(b0[i].Intersect(b1[i]));
                Assert.InRange(b0[i].Length, 1, 3);
                Assert.InRange(b1[i].Length, 1, 3);
            }

            // Three full global batches of 6 (3 per rank) and one of 3 (split 2 + 1).
            Assert.Equal(new[] { 3, 6, 6, 6 }, b0.Zip(b1, (x, y) => x.Length + y.Length).Order());

            // Together the ranks see every pair exactly once per epoch.
            Assert.Equal(Enumerable.Range(0, 21), b0.Concat(b1).SelectMany(b => b).Order());
        }

        Assert.Throws<DpoSharpException>(() => new RandomBatchSampler(10, 2, 0, worldSize: 2, rank: 2));
    }
}
