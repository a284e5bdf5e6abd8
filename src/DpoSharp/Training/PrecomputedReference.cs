using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using DpoSharp.Data;
using DpoSharp.IO;
using DpoSharp.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace DpoSharp.Training;

/// <summary>
/// Reference log-probs computed once before training (TRL's <c>precompute_ref_log_probs</c>) and looked up by
/// the pairs' dataset indices. <see cref="Create"/> caches them on disk as
/// <c>ref_logps-&lt;hash&gt;.safetensors</c>, keyed by a SHA-256 of the model weights, the tokenized pairs and the
/// tokenization settings, so a later run with the same inputs does not run the reference model at all.
/// </summary>
public sealed class PrecomputedReference : IReferenceLogProbs
{
    private readonly float[] _chosen;
    private readonly float[] _rejected;

    /// <summary>Wraps already computed values: entry i belongs to dataset pair i.</summary>
    public PrecomputedReference(float[] chosen, float[] rejected)
    {
        if (chosen.Length != rejected.Length)
        {
            throw new ArgumentException("chosen and rejected must have the same length");
        }

        _chosen = chosen;
        _rejected = rejected;
    }

    /// <summary>
    /// The values a checkpoint carries (its <c>ref_logps-*.safetensors</c> group: <c>chosen</c> and <c>rejected</c>,
    /// one finite float per pair of the <paramref name="count"/> pairs).
    /// </summary>
    /// <exception cref="DpoSharpException">A tensor is missing, of another type or length, or not finite; the
    /// message names <paramref name="source"/> and the tensor.</exception>
    public static PrecomputedReference FromCheckpoint(IReadOnlyDictionary<string, Tensor> group, int count, string source)
    {
        ArgumentNullException.ThrowIfNull(group);
        float[] Values(string name)
        {
            if (!group.TryGetValue(name, out var t))
            {
                throw new DpoSharpException($"{source}: no tensor '{name}' (reference log-probs); resume from another checkpoint.");
            }

            if (t.dtype != ScalarType.Float32 || t.dim() != 1 || t.shape[0] != count)
            {
                throw new DpoSharpException($"{source}: '{name}' is {t.dtype} [{string.Join(", ", t.shape)}], expected Float32 [{count}] (one value per training pair); resume with the same data, or from another checkpoint.");
            }

            var values = t.data<float>().ToArray();
            return values.All(float.IsFinite) ? values : throw new DpoSharpException($"{source}: '{name}' holds NaN or infinite values; resume from another checkpoint.");
        }

        return new PrecomputedReference(Values("chosen"), Values("rejected"));
    }

    /// <inheritdoc/>
    public string Kind => "precomputed";

    /// <summary>Reference log-prob sums of the chosen completions, by dataset index.</summary>
    public IReadOnlyList<float> Chosen => _chosen;

    /// <summary>Reference log-prob sums of the rejected completions, by dataset index.</summary>
    public IReadOnlyList<float> Rejected => _rejected;

    /// <summary>True when <see cref="Create"/> found the values in the cache.</summary>
    public bool LoadedFromCache { get; private init; }

    /// <summary>The cache file used (null when caching was off).</summary>
    public string? CachePath { get; private init; }

    /// <summary>
    /// Computes (or loads from <paramref name="cacheDir"/>) the reference log-probs of every pair in
    /// <paramref name="pairs"/> with <paramref name="model"/> in eval mode under <c>no_grad</c>. With a
    /// <paramref name="group"/> of several processes (data parallelism) rank r computes batches r, r + N, … and the
    /// values are gathered on every rank; when rank 0 finds them in its cache it broadcasts them instead. Every rank
    /// of the group must call this together.
    /// </summary>
    /// <param name="model">The reference model (or the policy before training).</param>
    /// <param name="pairs">The dataset.</param>
    /// <param name="collator">Builds the batches.</param>
    /// <param name="batchSize">Pairs per forward.</param>
    /// <param name="cacheDir">Cache directory, or null for no cache.</param>
    /// <param name="settingsKey">Tokenization settings (chat template, max lengths, …) that went into <paramref name="pairs"/>.</param>
    /// <param name="group">The data-parallel processes; null: this process alone.</param>
    public static PrecomputedReference Create(ICausalLM model, IReadOnlyList<TokenizedPair> pairs, PreferenceCollator collator, int batchSize, string? cacheDir, string settingsKey = "", Engine.IProcessGroup? group = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        group ??= Engine.SingleProcessGroup.Instance;
        string? path = null;
        string? key = null;
        PrecomputedReference? cached = null;
        if (cacheDir is not null)
        {
            key = CacheKey(model, pairs, settingsKey);
            path = Path.Combine(cacheDir, $"ref_logps-{key[..16]}.safetensors");
            cached = TryReadCache(path, key, pairs.Count);
        }

        if (group.WorldSize > 1)
        {
            // Every rank takes the same branch: rank 0's cache decides.
            Span<double> rank0Cached = [group.Rank == 0 && cached is not null ? 1 : 0];
            group.SumInPlace(rank0Cached);
            if (rank0Cached[0] > 0)
            {
                using var c = cached is null ? zeros(pairs.Count) : tensor(cached._chosen);
                using var r = cached is null ? zeros(pairs.Count) : tensor(cached._rejected);
                using (no_grad())
                {
                    group.Broadcast([c, r]);
                }

                return new PrecomputedReference(c.data<float>().ToArray(), r.data<float>().ToArray()) { LoadedFromCache = true, CachePath = path };
            }
        }
        else if (cached is not null)
        {
            return cached;
        }

        var chosen = new float[pairs.Count];
        var rejected = new float[pairs.Count];
        bool wasTraining = model.Module.training;
        model.Module.eval();
        try
        {
            int stride = group.WorldSize * batchSize;
            for (int start = group.Rank * batchSize; start < pairs.Count; start += stride)
            {
                using var scope = NewDisposeScope();
                using var _ = no_grad();
                var idx = Enumerable.Range(start, Math.Min(batchSize, pairs.Count - start)).ToArray();
                using var batch = collator.Collate(pairs, idx);
                var sums = ReferenceForward.SequenceSums(model, batch).cpu().data<float>().ToArray();
                for (int i = 0; i < idx.Length; i++)
                {
                    chosen[idx[i]] = sums[i];
                    rejected[idx[i]] = sums[idx.Length + i];
                }
            }
        }
        finally
        {
            model.Module.train(wasTraining);
        }

        if (group.WorldSize > 1)
        {
            // Gather: every value was computed by exactly one rank, the others hold 0 there (x + 0 = x exactly).
            using var c = tensor(chosen);
            using var r = tensor(rejected);
            using (no_grad())
            {
                group.SumInPlace([c, r]);
            }

            chosen = c.data<float>().ToArray();
            rejected = r.data<float>().ToArray();
        }

        if (path is not null)
        {
            Directory.CreateDirectory(cacheDir!);
            using var c = tensor(chosen);
            using var r = tensor(rejected);
            SafeTensorsWriter.Write(path, [("chosen", c), ("rejected", r)], new Dictionary<string, string> { ["key"] = key! });
        }

        return new PrecomputedReference(chosen, rejected) { CachePath = path };
    }

    /// <summary>The values of cache file <paramref name="path"/> when it exists and holds <paramref name="key"/>'s
    /// <paramref name="count"/> pairs; else null.</summary>
    private static PrecomputedReference? TryReadCache(string path, string key, int count)
    {
        if (!File.Exists(path))
        {
            return null;
        }

        Dictionary<string, Tensor> tensors;
        IReadOnlyDictionary<string, string> meta;
        using (var file = SafeTensorsFile.Open(path))
        {
            tensors = file.ReadAll();
            meta = file.Metadata;
        }

        try
        {
            if (meta.TryGetValue("key", out var stored) && stored == key && tensors.TryGetValue("chosen", out var c) && tensors.TryGetValue("rejected", out var r)
                && c.shape[0] == count && r.shape[0] == count)
            {
                return new PrecomputedReference(c.data<float>().ToArray(), r.data<float>().ToArray()) { LoadedFromCache = true, CachePath = path };
            }
        }
        finally
        {
            foreach (var t in tensors.Values)
            {
                t.Dispose();
            }
        }

        return null;
    }

    /// <summary>SHA-256 (hex) of the model weights (names, dtypes, shapes, bytes), the tokenized pairs and the settings.</summary>
    public static string CacheKey(ICausalLM model, IReadOnlyList<TokenizedPair> pairs, string settingsKey)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        using var sink = new HashStream(hash);
        void Text(string s) => hash.AppendData(Encoding.UTF8.GetBytes(s + "\n"));
        Text("dposharp-ref-logps-v1");
        Text(settingsKey);
        Text(model.Config.ModelType);
        foreach (var (name, t) in model.Module.state_dict())
        {
            Text($"{name}:{t.dtype}:{string.Join('x', t.shape)}");
            using var c = t.detach().cpu().contiguous();
            if (c.NumberOfElements > 0)
            {
                c.WriteBytesToStream(sink, 1 << 20);
            }
        }

        Text(pairs.Count.ToString(CultureInfo.InvariantCulture));
        var b = new byte[4];
        void Ids(int[] ids)
        {
            System.Buffers.Binary.BinaryPrimitives.WriteInt32LittleEndian(b, ids.Length);
            hash.AppendData(b);
            foreach (var id in ids)
            {
                System.Buffers.Binary.BinaryPrimitives.WriteInt32LittleEndian(b, id);
                hash.AppendData(b);
            }
        }

        foreach (var p in pairs)
        {
            Ids(p.PromptIds);
            Ids(p.ChosenIds);
            Ids(p.RejectedIds);
        }

        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }

    /// <inheritdoc/>
    public (Tensor Chosen, Tensor Rejected)? Compute(PreferenceBatch batch, Device device)
    {
        var idx = batch.PairIndices;
        if (idx.Count != batch.PairCount)
        {
            throw new InvalidOperationException("precomputed reference log-probs need the batch's pair indices");
        }

        var c = new float[idx.Count];
        var r = new float[idx.Count];
        for (int i = 0; i < idx.Count; i++)
        {
            c[i] = _chosen[idx[i]];
            r[i] = _rejected[idx[i]];
        }

        return (tensor(c, device: device), tensor(r, device: device));
    }

    /// <inheritdoc/>
    public void Dispose()
    {
    }

    private sealed class HashStream(IncrementalHash hash) : Stream
    {
        public override bool CanRead => false;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override void Flush()
        {
        }

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => hash.AppendData(buffer, offset, count);
    }
}
