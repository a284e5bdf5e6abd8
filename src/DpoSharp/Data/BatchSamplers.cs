namespace DpoSharp.Data;

/// <summary>A position in the data stream: epoch and batch index within the epoch (both 0-based).</summary>
/// <param name="Epoch">0-based epoch.</param>
/// <param name="Batch">0-based batch index within the epoch.</param>
public readonly record struct SamplerPosition(int Epoch, int Batch);

/// <summary>
/// Orders pair indices into batches, deterministically from a seed and the epoch, so a run can stop anywhere and
/// resume at exactly the same batch (<see cref="Iterate"/> from a <see cref="SamplerPosition"/>). With a world size
/// above 1 each rank gets its own disjoint share of every global batch.
/// </summary>
public abstract class BatchSampler
{
    /// <summary>Validates and stores the common settings.</summary>
    protected BatchSampler(int count, int batchSize, ulong seed, bool dropLast, int worldSize, int rank)
    {
        if (count < 1)
        {
            throw new DpoSharpException("The dataset has no pairs to sample from.");
        }

        if (batchSize < 1)
        {
            throw new DpoSharpException($"The batch size must be at least 1, got {batchSize}.");
        }

        if (worldSize < 1 || rank < 0 || rank >= worldSize)
        {
            throw new DpoSharpException($"Invalid sharding: rank {rank} of world size {worldSize}.");
        }

        Count = count;
        BatchSize = batchSize;
        Seed = seed;
        DropLast = dropLast;
        WorldSize = worldSize;
        Rank = rank;
        var global = batchSize * worldSize;
        if (dropLast && count < global)
        {
            throw new DpoSharpException($"The dataset has {count} pairs, fewer than one batch of {global}; lower the batch size or keep the last partial batch.");
        }
    }

    /// <summary>Number of pairs.</summary>
    public int Count { get; }

    /// <summary>Pairs per batch on this rank.</summary>
    public int BatchSize { get; }

    /// <summary>The seed.</summary>
    public ulong Seed { get; }

    /// <summary>Whether the last, smaller batch of an epoch is dropped.</summary>
    public bool DropLast { get; }

    /// <summary>Number of ranks sharing the data.</summary>
    public int WorldSize { get; }

    /// <summary>This rank (0-based).</summary>
    public int Rank { get; }

    /// <summary>Batches per epoch (the same on every rank).</summary>
    public int BatchesPerEpoch
    {
        get
        {
            var global = BatchSize * WorldSize;
            return DropLast ? Count / global : (Count + global - 1) / global;
        }
    }

    /// <summary>This rank's batches of <paramref name="epoch"/>, each a list of pair indices.</summary>
    public IReadOnlyList<int[]> EpochBatches(int epoch)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(epoch);
        var global = GlobalBatches(epoch);
        var mine = new List<int[]>(global.Count);
        foreach (var g in global)
        {
            mine.Add(Shard(g));
        }

        return mine;
    }

    /// <summary>Batches from <paramref name="start"/> on, epoch after epoch, for <paramref name="epochs"/> epochs in total
    /// (counting from epoch 0), each with its position.</summary>
    public IEnumerable<(SamplerPosition Position, int[] Batch)> Iterate(SamplerPosition start, int epochs)
    {
        for (var epoch = start.Epoch; epoch < epochs; epoch++)
        {
            var batches = EpochBatches(epoch);
            for (var b = epoch == start.Epoch ? start.Batch : 0; b < batches.Count; b++)
            {
                yield return (new SamplerPosition(epoch, b), batches[b]);
            }
        }
    }

    /// <summary>The global batches (<see cref="BatchSize"/> × <see cref="WorldSize"/> pairs) of an epoch.</summary>
    protected abstract List<int[]> GlobalBatches(int epoch);

    /// <summary>Cuts an order of all pairs into global batches (drops or keeps the tail).</summary>
    protected List<int[]> Chunk(int[] order)
    {
        var global = BatchSize * WorldSize;
        var batches = new List<int[]>();
        for (var i = 0; i < order.Length; i += global)
        {
            var n = Math.Min(global, order.Length - i);
            if (n < global && DropLast)
            {
                break;
            }

            batches.Add(order.AsSpan(i, n).ToArray());
        }

        return batches;
    }

    /// <summary>A permutation of 0..Count-1 for <paramref name="epoch"/> (Fisher–Yates with SplitMix64 from seed and epoch).</summary>
    protected int[] Permutation(int epoch, ulong stream = 0)
    {
        var order = Enumerable.Range(0, Count).ToArray();
        Shuffle(order, epoch, stream);
        return order;
    }

    /// <summary>Shuffles <paramref name="items"/> in place, deterministically from seed, epoch and stream.</summary>
    protected void Shuffle<T>(T[] items, int epoch, ulong stream)
    {
        var rng = new SplitMix64(Seed ^ (0x9E3779B97F4A7C15UL * (ulong)(epoch + 1)) ^ (stream * 0xD1B54A32D192ED03UL));
        for (var i = items.Length - 1; i > 0; i--)
        {
            var j = (int)rng.NextBelow((ulong)(i + 1));
            (items[i], items[j]) = (items[j], items[i]);
        }
    }

    private int[] Shard(int[] global)
    {
        if (WorldSize == 1)
        {
            return global;
        }

        // Contiguous slices keep length-grouped neighbours together; a short final batch is split as evenly as possible.
        var per = (global.Length + WorldSize - 1) / WorldSize;
        var start = Math.Min(global.Length, Rank * per);
        var end = Math.Min(global.Length, start + per);
        if (start == end)
        {
            // Fewer pairs than ranks in the last batch: repeat the final pair so every rank steps together.
            return [global[^1]];
        }

        return global[start..end];
    }

    /// <summary>SplitMix64: a small, fast generator whose output is fixed by its definition (stable across .NET versions).</summary>
    private struct SplitMix64(ulong state)
    {
        private ulong state = state;

        public ulong Next()
        {
            var z = state += 0x9E3779B97F4A7C15UL;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
            return z ^ (z >> 31);
        }

        public ulong NextBelow(ulong bound)
        {
            // Rejection sampling avoids modulo bias.
            var limit = ulong.MaxValue - (ulong.MaxValue % bound);
            ulong x;
            do
            {
                x = Next();
            }
            while (x >= limit);
            return x % bound;
        }
    }
}

/// <summary>Plain batching: a fresh seeded permutation each epoch (or file order with <c>shuffle: false</c>).</summary>
public sealed class RandomBatchSampler : BatchSampler
{
    /// <summary>Creates the sampler.</summary>
    /// <param name="count">Number of pairs.</param>
    /// <param name="batchSize">Pairs per batch on each rank.</param>
    /// <param name="seed">Seed of the per-epoch permutations.</param>
    /// <param name="shuffle">False keeps dataset order.</param>
    /// <param name="dropLast">Drop the last partial batch.</param>
    /// <param name="worldSize">Number of ranks (default 1).</param>
    /// <param name="rank">This rank (default 0).</param>
    public RandomBatchSampler(int count, int batchSize, ulong seed, bool shuffle = true, bool dropLast = false, int worldSize = 1, int rank = 0)
        : base(count, batchSize, seed, dropLast, worldSize, rank)
    {
        ShuffleEnabled = shuffle;
    }

    /// <summary>Whether the order is shuffled.</summary>
    public bool ShuffleEnabled { get; }

    /// <inheritdoc/>
    protected override List<int[]> GlobalBatches(int epoch) =>
        Chunk(ShuffleEnabled ? Permutation(epoch) : Enumerable.Range(0, Count).ToArray());
}

/// <summary>
/// Length-grouped batching (like transformers' <c>LengthGroupedSampler</c>): each epoch, a seeded permutation is cut
/// into mega-batches of <c>megaBatchFactor</c> batches; each mega-batch is sorted by length (longest first) and cut
/// into batches, so a batch holds pairs of similar length and padding shrinks. The batch order is then shuffled,
/// with the batch holding the longest pair first so memory problems show at the first step.
/// </summary>
public sealed class LengthGroupedSampler : BatchSampler
{
    private readonly int[] lengths;
    private readonly int megaBatchFactor;

    /// <summary>Creates the sampler.</summary>
    /// <param name="lengths">Length of each pair (e.g. <see cref="PreferenceCollator.PairLength"/>).</param>
    /// <param name="batchSize">Pairs per batch on each rank.</param>
    /// <param name="seed">Seed.</param>
    /// <param name="megaBatchFactor">Batches per mega-batch (default 50, as in transformers).</param>
    /// <param name="dropLast">Drop the last partial batch.</param>
    /// <param name="worldSize">Number of ranks (default 1).</param>
    /// <param name="rank">This rank (default 0).</param>
    public LengthGroupedSampler(IReadOnlyList<int> lengths, int batchSize, ulong seed, int megaBatchFactor = 50, bool dropLast = false, int worldSize = 1, int rank = 0)
        : base(lengths.Count, batchSize, seed, dropLast, worldSize, rank)
    {
        if (megaBatchFactor < 1)
        {
            throw new DpoSharpException($"The mega-batch factor must be at least 1, got {megaBatchFactor}.");
        }

        this.lengths = lengths.ToArray();
        this.megaBatchFactor = megaBatchFactor;
    }

    /// <summary>Creates the sampler from tokenized pairs (length = prompt + longer completion).</summary>
    public static LengthGroupedSampler For(IReadOnlyList<TokenizedPair> pairs, int batchSize, ulong seed, int megaBatchFactor = 50, bool dropLast = false, int worldSize = 1, int rank = 0) =>
        new(pairs.Select(PreferenceCollator.PairLength).ToArray(), batchSize, seed, megaBatchFactor, dropLast, worldSize, rank);

    /// <inheritdoc/>
    protected override List<int[]> GlobalBatches(int epoch)
    {
        var order = Permutation(epoch);
        var mega = BatchSize * WorldSize * megaBatchFactor;
        for (var start = 0; start < order.Length; start += mega)
        {
            var n = Math.Min(mega, order.Length - start);
            var slice = order.AsSpan(start, n);

            // Longest first; ties keep the permutation order (stable).
            var sorted = slice.ToArray().Select((index, k) => (index, k))
                .OrderByDescending(x => lengths[x.index]).ThenBy(x => x.k).Select(x => x.index).ToArray();
            sorted.CopyTo(slice);
        }

        var batches = Chunk(order);
        if (batches.Count > 1)
        {
            var arr = batches.ToArray();
            Shuffle(arr, epoch, stream: 1);
            var longest = Array.FindIndex(arr, b => b.Contains(order.MaxBy(i => lengths[i])));
            (arr[0], arr[longest]) = (arr[longest], arr[0]);
            batches = [.. arr];
        }

        return batches;
    }
}
