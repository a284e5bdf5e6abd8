using System.Collections.Concurrent;
using System.Text;

namespace DpoSharp.Tokenization;

/// <summary>
/// Byte-pair encoding over one pre-tokenized word: symbols start as single characters (or bytes, for byte-level
/// vocabularies), then the adjacent pair with the lowest merge rank is merged (leftmost first on ties) until no
/// pair can merge — the algorithm of Hugging Face <c>tokenizers</c>' BPE model. Results are cached per word.
/// </summary>
internal sealed class BpeModel
{
    private const int MaxCacheEntries = 200_000;
    private const int MaxCachedWordLength = 256;

    private readonly Dictionary<string, int> _vocab;
    private readonly Dictionary<long, (int Rank, int NewId)> _merges;
    private readonly int[] _byteFallbackIds;
    private readonly string _source;
    private readonly ConcurrentDictionary<string, int[]> _cache = new(StringComparer.Ordinal);

    public BpeModel(
        Dictionary<string, int> vocab,
        IReadOnlyList<(string Left, string Right)> merges,
        string? unkToken,
        bool byteFallback,
        bool fuseUnk,
        bool ignoreMerges,
        string source)
        : this(vocab, merges.Select((m, i) => (m.Left, m.Right, i)).ToList(), unkToken, byteFallback, fuseUnk, ignoreMerges, source)
    {
    }

    /// <summary>Merges with explicit ranks; equal ranks merge leftmost first (SentencePiece's equal scores).</summary>
    public BpeModel(
        Dictionary<string, int> vocab,
        IReadOnlyList<(string Left, string Right, int Rank)> merges,
        string? unkToken,
        bool byteFallback,
        bool fuseUnk,
        bool ignoreMerges,
        string source)
    {
        _source = source;
        _vocab = vocab;
        _merges = new Dictionary<long, (int, int)>(merges.Count);
        for (var index = 0; index < merges.Count; index++)
        {
            var (l, r, rank) = merges[index];
            if (!vocab.TryGetValue(l, out var li) || !vocab.TryGetValue(r, out var ri))
            {
                throw new DpoSharpException($"{source}: merge #{rank} '{l} {r}' uses a token that is not in the vocabulary; the tokenizer file is corrupt.");
            }

            if (!vocab.TryGetValue(l + r, out var ni))
            {
                throw new DpoSharpException($"{source}: merge #{rank} '{l} {r}' produces '{l + r}', which is not in the vocabulary; the tokenizer file is corrupt.");
            }

            _merges.TryAdd(Key(li, ri), (rank, ni));
        }

        UnkToken = unkToken;
        UnkId = unkToken is not null && vocab.TryGetValue(unkToken, out var u) ? u : null;
        ByteFallback = byteFallback;
        FuseUnk = fuseUnk;
        IgnoreMerges = ignoreMerges;
        _byteFallbackIds = new int[256];
        for (var b = 0; b < 256; b++)
        {
            _byteFallbackIds[b] = vocab.TryGetValue($"<0x{b:X2}>", out var id) ? id : -1;
        }
    }

    public string? UnkToken { get; }

    public int? UnkId { get; }

    public bool ByteFallback { get; }

    public bool FuseUnk { get; }

    public bool IgnoreMerges { get; }

    public IReadOnlyDictionary<string, int> Vocab => _vocab;

    /// <summary>Appends the ids of one word to <paramref name="output"/>.</summary>
    public void EncodeWord(string word, List<int> output)
    {
        if (word.Length == 0)
        {
            return;
        }

        if (_cache.TryGetValue(word, out var cached))
        {
            output.AddRange(cached);
            return;
        }

        var ids = Merge(word);
        if (word.Length > MaxCachedWordLength)
        {
            output.AddRange(ids);
            return;
        }

        if (_cache.Count >= MaxCacheEntries)
        {
            _cache.Clear();
        }

        _cache.TryAdd(word, ids);
        output.AddRange(ids);
    }

    private static long Key(int left, int right) => ((long)left << 32) | (uint)right;

    private int[] Merge(string word)
    {
        if (IgnoreMerges && _vocab.TryGetValue(word, out var whole))
        {
            return [whole];
        }

        var symbols = InitialSymbols(word);
        var n = symbols.Count;
        if (n < 2)
        {
            return [.. symbols];
        }

        return ApplyMerges(symbols.ToArray());
    }

    /// <summary>Initial symbols: one per code point (surrogate pairs stay together), else its byte-fallback
    /// pieces, else the unknown token (runs fused when <see cref="FuseUnk"/>).</summary>
    private List<int> InitialSymbols(string word)
    {
        var symbols = new List<int>(word.Length);
        var unkRun = false;
        for (var i = 0; i < word.Length;)
        {
            var len = char.IsHighSurrogate(word[i]) && i + 1 < word.Length && char.IsLowSurrogate(word[i + 1]) ? 2 : 1;
            var piece = word.Substring(i, len);
            i += len;
            if (_vocab.TryGetValue(piece, out var id))
            {
                symbols.Add(id);
                unkRun = false;
                continue;
            }

            if (ByteFallback)
            {
                var bytes = Encoding.UTF8.GetBytes(piece);
                if (bytes.All(b => _byteFallbackIds[b] >= 0))
                {
                    foreach (var b in bytes)
                    {
                        symbols.Add(_byteFallbackIds[b]);
                    }

                    unkRun = false;
                    continue;
                }
            }

            if (UnkId is not int unk)
            {
                throw new DpoSharpException($"{_source}: the tokenizer cannot encode '{piece}' (U+{char.ConvertToUtf32(piece, 0):X4}): it is not in the vocabulary and the model has no unknown token or byte fallback.");
            }

            if (!(FuseUnk && unkRun))
            {
                symbols.Add(unk);
            }

            unkRun = true;
        }

        return symbols;
    }

    /// <summary>Applies merges lowest rank first (leftmost on ties) over a linked list of symbols.</summary>
    private int[] ApplyMerges(int[] id2)
    {
        var n = id2.Length;
        var prev = new int[n];
        var next = new int[n];
        var alive = new bool[n];
        for (var i = 0; i < n; i++)
        {
            prev[i] = i - 1;
            next[i] = i + 1 < n ? i + 1 : -1;
            alive[i] = true;
        }

        // Min-heap of (rank, position, expected new id); stale entries are skipped when popped.
        var heap = new PriorityQueue<(int Pos, int NewId), (int Rank, int Pos)>();
        for (var i = 0; i + 1 < n; i++)
        {
            if (_merges.TryGetValue(Key(id2[i], id2[i + 1]), out var m))
            {
                heap.Enqueue((i, m.NewId), (m.Rank, i));
            }
        }

        while (heap.TryDequeue(out var top, out _))
        {
            var pos = top.Pos;
            if (!alive[pos] || next[pos] < 0)
            {
                continue;
            }

            var right = next[pos];
            if (!_merges.TryGetValue(Key(id2[pos], id2[right]), out var m) || m.NewId != top.NewId)
            {
                continue;
            }

            id2[pos] = m.NewId;
            alive[right] = false;
            next[pos] = next[right];
            if (next[right] >= 0)
            {
                prev[next[right]] = pos;
            }

            if (prev[pos] >= 0 && _merges.TryGetValue(Key(id2[prev[pos]], id2[pos]), out var ml))
            {
                heap.Enqueue((prev[pos], ml.NewId), (ml.Rank, prev[pos]));
            }

            if (next[pos] >= 0 && _merges.TryGetValue(Key(id2[pos], id2[next[pos]]), out var mr))
            {
                heap.Enqueue((pos, mr.NewId), (mr.Rank, pos));
            }
        }

        var result = new List<int>(n);
        for (var i = 0; i >= 0; i = next[i])
        {
            result.Add(id2[i]);
        }

        return [.. result];
    }
}
