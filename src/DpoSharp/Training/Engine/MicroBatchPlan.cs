using DpoSharp.Data;

namespace DpoSharp.Training.Engine;

/// <summary>
/// Which micro-batches an optimizer step reads: the sampler's batches of the current epoch (seeded, sharded by rank),
/// taken <c>gradient_accumulation_steps</c> at a time from the data position; a step never crosses an epoch's end.
/// </summary>
internal sealed class MicroBatchPlan
{
    private readonly Func<int, int> _length;
    private readonly int _count;
    private readonly BatchOptions _options;
    private readonly int _seed;
    private BatchSampler? _sampler;
    private IReadOnlyList<int[]>? _epochBatches;
    private int _epochBatchesEpoch = -1;

    /// <summary>Plans batches of <paramref name="data"/>.</summary>
    public MicroBatchPlan(IBatchSource<SequenceBatch> data, BatchOptions options, int seed)
    {
        _length = data.Length;
        _count = data.Count;
        _options = options;
        _seed = seed;
    }

    /// <summary>The sampler of rank <paramref name="rank"/> of <paramref name="worldSize"/> (made anew when they change).</summary>
    public BatchSampler Sampler(int rank, int worldSize)
    {
        if (_sampler is null || _sampler.Rank != rank || _sampler.WorldSize != worldSize)
        {
            ulong seed = (ulong)_seed;
            int bs = _options.PerDeviceTrainBatchSize;
            _sampler = _options.GroupByLength
                ? new LengthGroupedSampler([.. Enumerable.Range(0, _count).Select(_length)], bs, seed, worldSize: worldSize, rank: rank)
                : new RandomBatchSampler(_count, bs, seed, worldSize: worldSize, rank: rank);
            _epochBatches = null;
            _epochBatchesEpoch = -1;
        }

        return _sampler;
    }

    /// <summary>The micro-batches of the next optimizer step from data position (<paramref name="epoch"/>,
    /// <paramref name="microBatch"/>).</summary>
    public List<int[]> NextStep(BatchSampler sampler, int epoch, int microBatch)
    {
        if (_epochBatches is null || _epochBatchesEpoch != epoch)
        {
            _epochBatches = sampler.EpochBatches(epoch);
            _epochBatchesEpoch = epoch;
        }

        var list = new List<int[]>();
        for (int mb = microBatch; mb < _epochBatches.Count && list.Count < _options.GradientAccumulationSteps; mb++)
        {
            list.Add(_epochBatches[mb]);
        }

        return list;
    }
}
