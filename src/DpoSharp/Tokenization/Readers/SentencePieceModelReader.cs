using static DpoSharp.Tokenization.Readers.ReaderSupport;

namespace DpoSharp.Tokenization.Readers;

/// <summary>Reads a SentencePiece <c>tokenizer.model</c>: BPE models become ranked merges for <see cref="BpeModel"/>;
/// unigram and other models are encoded by Microsoft.ML.Tokenizers' <c>SentencePieceTokenizer</c>.</summary>
internal static class SentencePieceModelReader
{
    public static TokenizerFileContents Read(string source)
    {
        var sp = SentencePieceModel.Read(source);
        return sp.ModelType == 2 ? ReadBpe(sp, source) : ReadWithMicrosoftMl(sp, source);
    }

    private static TokenizerFileContents ReadBpe(SentencePieceModel sp, string source)
    {
        var (bpe, vocab) = BuildSentencePieceBpe(sp, source);
        var added = new List<AddedToken>();
        for (var id = 0; id < sp.Pieces.Count; id++)
        {
            var (piece, _, type) = sp.Pieces[id];
            if (type is SentencePieceModel.TypeControl or SentencePieceModel.TypeUnknown or SentencePieceModel.TypeUserDefined)
            {
                AddSpecial(added, piece, id, special: type != SentencePieceModel.TypeUserDefined);
            }
        }

        return new TokenizerFileContents
        {
            Source = source,
            Bpe = bpe,
            Normalizer = new SentencePieceNormalizer(sp.AddDummyPrefix, sp.RemoveExtraWhitespaces, sp.EscapeWhitespaces),
            PreTokenizer = IsMetaspaceSplitSafe(vocab) ? new MetaspaceBoundarySplitter('▁') : null,
            Decoder = Decoder(),
            Vocab = vocab,
            Added = added,
            UsePostProcessorDefaults = false,
            DefaultAddBos = true,
            DefaultSpecialTokens = SpecialTokenDefaults(sp),
        };
    }

    /// <summary>Unigram and other SentencePiece models: Microsoft.ML.Tokenizers encodes them.</summary>
    private static TokenizerFileContents ReadWithMicrosoftMl(SentencePieceModel sp, string source)
    {
        Microsoft.ML.Tokenizers.SentencePieceTokenizer spm;
        try
        {
            using var stream = File.OpenRead(source);
            spm = Microsoft.ML.Tokenizers.SentencePieceTokenizer.Create(stream, addBeginningOfSentence: false, addEndOfSentence: false);
        }
        catch (Exception e) when (e is not DpoSharpException)
        {
            throw new DpoSharpException($"{source}: SentencePiece model type {sp.ModelType} could not be loaded ({e.Message}).", e);
        }

        var added = new List<AddedToken>();
        AddSpecial(added, spm.UnknownToken, spm.UnknownId, special: true);
        AddSpecial(added, spm.BeginningOfSentenceToken, spm.BeginningOfSentenceId, special: true);
        AddSpecial(added, spm.EndOfSentenceToken, spm.EndOfSentenceId, special: true);
        return new TokenizerFileContents
        {
            Source = source,
            SentencePiece = spm,
            Decoder = Decoder(),
            Vocab = spm.Vocabulary,
            Added = added,
            UsePostProcessorDefaults = false,
            DefaultAddBos = true,
            DefaultSpecialTokens = SpecialTokenDefaults(sp),
        };
    }

    private static SequenceDecoder Decoder() =>
        new([new ReplaceDecoder("▁", " "), new ByteFallbackDecoder(), new FuseDecoder(), new StripDecoder(' ', 1, 0)]);

    /// <summary>The pieces of the model's bos/eos/unk/pad ids, for the keys the configuration does not name.</summary>
    private static List<(string Key, string Token)> SpecialTokenDefaults(SentencePieceModel sp)
    {
        string? Piece(int id) => id >= 0 && id < sp.Pieces.Count ? sp.Pieces[id].Piece : null;
        var defaults = new List<(string Key, string Token)>();
        foreach (var (key, id) in new[] { ("bos_token", sp.BosId), ("eos_token", sp.EosId), ("unk_token", sp.UnkId), ("pad_token", sp.PadId) })
        {
            if (Piece(id) is string piece)
            {
                defaults.Add((key, piece));
            }
        }

        return defaults;
    }

    private static void AddSpecial(List<AddedToken> added, string? content, int id, bool special)
    {
        if (!string.IsNullOrEmpty(content) && id >= 0 && !added.Any(a => a.Id == id))
        {
            added.Add(new AddedToken(id, content, special));
        }
    }

    /// <summary>SentencePiece BPE as ranked merges: every split of a normal piece into two pieces is a merge whose
    /// rank is the piece's score order (equal scores share a rank, so the leftmost pair merges first).</summary>
    private static (BpeModel, Dictionary<string, int>) BuildSentencePieceBpe(SentencePieceModel sp, string source)
    {
        var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var id = 0; id < sp.Pieces.Count; id++)
        {
            vocab.TryAdd(sp.Pieces[id].Piece, id);
        }

        var normal = sp.Pieces.Select((p, id) => (p.Piece, p.Score, p.Type, Id: id)).Where(p => p.Type == SentencePieceModel.TypeNormal).ToList();
        var scoreRank = normal.Select(p => p.Score).Distinct().OrderByDescending(x => x).Select((score, rank) => (score, rank)).ToDictionary(x => x.score, x => x.rank);
        var merges = new List<(string, string, int)>();
        foreach (var (piece, score, _, _) in normal)
        {
            for (var k = 1; k < piece.Length; k++)
            {
                if (char.IsLowSurrogate(piece[k]))
                {
                    continue;
                }

                var left = piece[..k];
                var right = piece[k..];
                if (vocab.ContainsKey(left) && vocab.ContainsKey(right))
                {
                    merges.Add((left, right, scoreRank[score]));
                }
            }
        }

        var unk = sp.UnkId >= 0 && sp.UnkId < sp.Pieces.Count ? sp.Pieces[sp.UnkId].Piece : null;
        return (new BpeModel(vocab, merges, unk, sp.ByteFallback, fuseUnk: true, ignoreMerges: false, source), vocab);
    }
}
