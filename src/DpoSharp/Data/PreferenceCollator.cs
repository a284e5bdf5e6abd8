using static TorchSharp.torch;

namespace DpoSharp.Data;

/// <summary>
/// Builds a <see cref="PreferenceBatch"/> from tokenized pairs: rows 0..P-1 are prompt + chosen, rows P..2P-1 prompt
/// + rejected (same pair order), right-padded with the pad id to the longest row (rounded up to
/// <see cref="PadToMultipleOf"/>). The attention mask is 1 on real tokens; the completion mask is 1 on completion
/// tokens only; position ids count 0..len-1 on real tokens and are 0 on padding.
/// </summary>
public sealed class PreferenceCollator
{
    /// <summary>Creates a collator.</summary>
    /// <param name="padTokenId">Id written into padding positions (masked out everywhere).</param>
    /// <param name="padToMultipleOf">Round the padded length up to a multiple of this (null: no rounding).</param>
    public PreferenceCollator(int padTokenId, int? padToMultipleOf = null)
    {
        if (padTokenId < 0)
        {
            throw new DpoSharpException($"The pad token id must be non-negative, got {padTokenId}.");
        }

        if (padToMultipleOf is < 1)
        {
            throw new DpoSharpException($"pad_to_multiple_of must be at least 1, got {padToMultipleOf}.");
        }

        PadTokenId = padTokenId;
        PadToMultipleOf = padToMultipleOf;
    }

    /// <summary>Id written into padding positions.</summary>
    public int PadTokenId { get; }

    /// <summary>Padded length multiple, or null.</summary>
    public int? PadToMultipleOf { get; }

    /// <summary>Collates <paramref name="pairs"/>; <see cref="PreferenceBatch.PairIndices"/> are 0..P-1.</summary>
    public PreferenceBatch Collate(IReadOnlyList<TokenizedPair> pairs, Device? device = null) =>
        Collate(pairs, Enumerable.Range(0, pairs.Count).ToArray(), device);

    /// <summary>
    /// Prefix sharing: each pair is one segment group <c>[prompt | chosen | last prompt token | rejected]</c>, so the
    /// prompt runs once for both completions. The rejected branch's position ids continue from the prompt's end
    /// (as in its own row), and the attention mask hides the chosen branch from it: chosen tokens see the prompt and
    /// the chosen tokens before them, rejected tokens see the prompt (its last token through the repeated copy,
    /// which predicts the first rejected token) and the rejected tokens before them. Log-probs, losses and gradients
    /// equal the one-row-per-completion layout's (fp32 rounding aside).
    /// </summary>
    /// <value>Default false (the trainers turn it on: <c>prefix_sharing</c>).</value>
    public bool PrefixSharing { get; init; }

    /// <summary>
    /// Padding-free batches (TRL's <c>padding_free</c>): sequences (or, with <see cref="PrefixSharing"/>, pair
    /// groups) are packed one after another into rows as long as the longest of them (first-fit by decreasing
    /// length), position ids restarting at each, with a block-diagonal attention mask; only the rows' tails are
    /// padded. Same log-probs as the padded layout (fp32 rounding aside).
    /// </summary>
    /// <value>Default false.</value>
    public bool PaddingFree { get; init; }

    /// <summary>Collates the pairs at <paramref name="indices"/> of <paramref name="dataset"/> (a sampler's batch);
    /// <see cref="PreferenceBatch.PairIndices"/> are those indices.</summary>
    public PreferenceBatch Collate(IReadOnlyList<TokenizedPair> dataset, IReadOnlyList<int> indices, Device? device = null)
    {
        if (indices.Count == 0)
        {
            throw new ArgumentException("A batch needs at least one pair.", nameof(indices));
        }

        var pairs = indices.Select(i => dataset[i]).ToArray();
        var units = PrefixSharing ? SharedUnits(pairs) : RowUnits(pairs);
        bool segmented = PrefixSharing || PaddingFree;
        var rowsOfUnits = PaddingFree ? Pack(units) : units.Select(u => new List<Segmented>([u])).ToList();
        var t = rowsOfUnits.Max(r => r.Sum(u => u.Length));
        if (PadToMultipleOf is int m)
        {
            t = (t + m - 1) / m * m;
        }

        var rows = rowsOfUnits.Count;
        var ids = new long[rows * t];
        var attention = new long[rows * t];
        var completion = new long[rows * t];
        var positions = new long[rows * t];
        var segments = new long[rows * t];
        var parents = new long[rows * t];
        Array.Fill(ids, PadTokenId);
        Array.Fill(segments, -1L);
        Array.Fill(parents, -1L);
        // num_tokens counts the tokens of one row per completion (TRL's layout), whatever the layout: metrics and
        // resumed runs do not depend on prefix sharing or packing.
        long tokens = pairs.Sum(x => (2L * x.PromptIds.Length) + x.ChosenIds.Length + x.RejectedIds.Length);
        int sequenceCount = 2 * pairs.Length;
        var visible = new List<long>[sequenceCount];    // per output sequence: flat indices of the tokens it attends
        var owner = new long[rows * t];                 // per token: (sequence, position) of the sequence computing it
        for (var row = 0; row < rows; row++)
        {
            var offset = row * t;
            foreach (var u in rowsOfUnits[row])
            {
                if (segmented)
                {
                    u.AddSequences(offset, sequenceCount, visible, owner);
                }

                u.Ids.CopyTo(ids, offset);
                u.Completion.CopyTo(completion, offset);
                u.Positions.CopyTo(positions, offset);
                u.Segments.CopyTo(segments, offset);
                u.Parents.CopyTo(parents, offset);
                Array.Fill(attention, 1L, offset, u.Length);
                offset += u.Length;
            }
        }

        var shape = new long[] { rows, t };
        var target = device ?? CPU;
        Tensor? gather = null, scatter = null;
        if (segmented)
        {
            // Each output sequence as its own causal row of the tokens it attends (right-padded with its first token,
            // which no real query sees): attention runs on these rows with the causal fast path.
            for (var q = 0; q < sequenceCount; q++)
            {
                visible[q] ??= [0];                     // a sequence without tokens (empty prompt and completion)
            }

            int tv = visible.Max(v => v.Count);
            var g = new long[sequenceCount * tv];
            for (var q = 0; q < sequenceCount; q++)
            {
                Array.Fill(g, visible[q][0], q * tv, tv);
                visible[q].CopyTo(g, q * tv);
            }

            for (var j = 0; j < owner.Length; j++)
            {
                owner[j] = (owner[j] >> 32) * tv + (owner[j] & 0xFFFFFFFF);
            }

            gather = tensor(g, [sequenceCount, tv], ScalarType.Int64, target);    // (S, Tv) into the (B·T) tokens
            scatter = tensor(owner, [rows * t], ScalarType.Int64, target);        // (B·T) into the (S·Tv) outputs
        }

        return new PreferenceBatch
        {
            InputIds = tensor(ids, shape, ScalarType.Int64, target), // (B, T)
            AttentionMask = tensor(attention, shape, ScalarType.Int64, target),
            CompletionMask = tensor(completion, shape, ScalarType.Int64, target),
            PositionIds = tensor(positions, shape, ScalarType.Int64, target),
            SegmentIds = segmented ? tensor(segments, shape, ScalarType.Int64, target) : null,
            SequenceGather = gather,
            SequenceScatter = scatter,
            ParentSegmentIds = segmented ? tensor(parents, shape, ScalarType.Int64, target) : null,
            SequenceCount = sequenceCount,
            TokenCount = tokens,
            PairIndices = indices.ToArray(),
        };
    }

    // One unit per completion: rows 0..P-1 prompt + chosen (segment i), P..2P-1 prompt + rejected (segment P + i).
    private static List<Segmented> RowUnits(TokenizedPair[] pairs)
    {
        int p = pairs.Length;
        var units = new List<Segmented>(2 * p);
        for (var row = 0; row < 2 * p; row++)
        {
            var pair = pairs[row % p];
            var answer = row < p ? pair.ChosenIds : pair.RejectedIds;
            var u = new Segmented(pair.PromptIds.Length + answer.Length);
            u.Add(pair.PromptIds, 0, row, row, completion: false);
            u.Add(answer, pair.PromptIds.Length, row, row, completion: true);
            units.Add(u);
        }

        return units;
    }

    // One unit per pair: [prompt[..^1] | prompt[^1] | chosen | prompt[^1] | rejected]. Segments: shared prompt 2P + i,
    // chosen branch i (with the prompt's last token), rejected branch P + i (with its copy); both branches' parent is
    // the shared prompt. The copy keeps "position t-1 predicts token t" true for the first rejected token.
    private static List<Segmented> SharedUnits(TokenizedPair[] pairs)
    {
        int p = pairs.Length;
        var units = new List<Segmented>(p);
        for (var i = 0; i < p; i++)
        {
            var pair = pairs[i];
            int lp = pair.PromptIds.Length;
            int shared = Math.Max(0, lp - 1);
            var last = lp > 0 ? pair.PromptIds[^1..] : [];
            var u = new Segmented(shared + (2 * last.Length) + pair.ChosenIds.Length + pair.RejectedIds.Length);
            u.Add(pair.PromptIds.AsSpan(0, shared), 0, (2 * p) + i, (2 * p) + i, completion: false);
            u.Add(last, shared, i, (2 * p) + i, completion: false);
            u.Add(pair.ChosenIds, lp, i, (2 * p) + i, completion: true);
            u.Add(last, shared, p + i, (2 * p) + i, completion: false);
            u.Add(pair.RejectedIds, lp, p + i, (2 * p) + i, completion: true);
            units.Add(u);
        }

        return units;
    }

    // First-fit by decreasing length into rows as long as the longest unit.
    private static List<List<Segmented>> Pack(List<Segmented> units)
    {
        int capacity = units.Max(u => u.Length);
        var rows = new List<List<Segmented>>();
        var fill = new List<int>();
        foreach (var u in units.OrderByDescending(u => u.Length))
        {
            int r = fill.FindIndex(f => f + u.Length <= capacity);
            if (r < 0)
            {
                rows.Add([]);
                fill.Add(0);
                r = rows.Count - 1;
            }

            rows[r].Add(u);
            fill[r] += u.Length;
        }

        return rows;
    }

    /// <summary>The tokens of one row's worth of segments, built left to right.</summary>
    private sealed class Segmented(int length)
    {
        private int _n;

        public int Length => length;

        public long[] Ids { get; } = new long[length];

        public long[] Completion { get; } = new long[length];

        public long[] Positions { get; } = new long[length];

        public long[] Segments { get; } = new long[length];

        public long[] Parents { get; } = new long[length];

        // Registers the output sequences of this unit placed at flat index `offset`: each one attends the tokens of
        // its own segment and of its parent segment, in order; a token is computed by the sequence of its own
        // segment, or (a shared prompt token) by the first sequence whose parent it is. owner packs
        // (sequence << 32) | position.
        public void AddSequences(int offset, int sequenceCount, List<long>[] visible, long[] owner)
        {
            var sequences = Segments.Where(x => x >= 0 && x < sequenceCount).Distinct().ToList();
            foreach (var seq in sequences)
            {
                long parent = Parents[Array.IndexOf(Segments, seq)];
                var list = visible[seq] = [];
                for (var j = 0; j < length; j++)
                {
                    if (Segments[j] == seq || (Segments[j] == parent && parent != seq))
                    {
                        list.Add(offset + j);
                    }
                }
            }

            for (var j = 0; j < length; j++)
            {
                long seq = Segments[j] < sequenceCount ? Segments[j] : sequences.First(x => Parents[Array.IndexOf(Segments, x)] == Segments[j]);
                owner[offset + j] = (seq << 32) | (long)visible[seq].IndexOf(offset + j);
            }
        }

        // A completion token counts only when a token of its own sequence precedes it (the first token of a sequence
        // has nothing to be predicted from), as in the one-row-per-completion layout.
        public void Add(ReadOnlySpan<int> tokens, int firstPosition, int segment, int parent, bool completion)
        {
            for (var j = 0; j < tokens.Length; j++)
            {
                Ids[_n] = tokens[j];
                Positions[_n] = firstPosition + j;
                Segments[_n] = segment;
                Parents[_n] = parent;
                Completion[_n] = completion && firstPosition + j > 0 ? 1 : 0;
                _n++;
            }
        }
    }

    /// <summary>Sequence length of a pair for batching: prompt + the longer completion.</summary>
    public static int PairLength(TokenizedPair pair) => pair.PromptIds.Length + Math.Max(pair.ChosenIds.Length, pair.RejectedIds.Length);
}
