using System.Text.Json;
using DpoSharp.IO;
using DpoSharp.IO.Gguf;
using DpoSharp.Models;
using DpoSharp.Tokenization;

namespace DpoSharp.Export;

/// <summary>
/// The <c>tokenizer.*</c> metadata of a GGUF file, from a Hugging Face model directory's tokenizer files, as llama.cpp's
/// <c>convert_hf_to_gguf.py</c> writes it: <c>tokenizer.ggml.model</c> <c>gpt2</c> (byte-level BPE: tokens, token
/// types, merges, <c>tokenizer.ggml.pre</c>) or <c>llama</c> (SentencePiece: tokens, scores, token types), the
/// special token ids, <c>add_bos_token</c>/<c>add_eos_token</c> and <c>tokenizer.chat_template</c>. The token list
/// has exactly as many entries as the embedding has rows (unused rows become <c>[PAD{id}]</c>, type unused).
/// </summary>
public sealed class GgufVocabulary
{
    /// <summary>The Llama 3 pre-tokenizer regex (<c>tokenizer.ggml.pre</c> = <c>llama-bpe</c>).</summary>
    internal const string Llama3Pattern = @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    /// <summary>The Qwen2 pre-tokenizer regex (<c>tokenizer.ggml.pre</c> = <c>qwen2</c>).</summary>
    internal const string Qwen2Pattern = @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    private static readonly string[] TokenizerFiles = ["tokenizer.json", "tokenizer.model", "vocab.json", "encoder.json"];

    /// <summary><c>tokenizer.ggml.model</c>: <c>gpt2</c> or <c>llama</c>.</summary>
    public required string Model { get; init; }

    /// <summary><c>tokenizer.ggml.pre</c> (byte-level BPE only), or null.</summary>
    public string? Pre { get; init; }

    /// <summary>The tokens, one per embedding row.</summary>
    public required string[] Tokens { get; init; }

    /// <summary>The token types, one per token.</summary>
    public required GgufTokenType[] TokenTypes { get; init; }

    /// <summary>SentencePiece scores (llama model only), or null.</summary>
    public float[]? Scores { get; init; }

    /// <summary>BPE merges "left right" in rank order (gpt2 model only), or null.</summary>
    public string[]? Merges { get; init; }

    /// <summary>BOS id, or null.</summary>
    public int? BosId { get; init; }

    /// <summary>EOS id, or null.</summary>
    public int? EosId { get; init; }

    /// <summary>Unknown-token id, or null.</summary>
    public int? UnkId { get; init; }

    /// <summary>Padding id (only when the tokenizer names a pad token), or null.</summary>
    public int? PadId { get; init; }

    /// <summary>Whether the tokenizer puts BOS before a sequence.</summary>
    public bool AddBos { get; init; }

    /// <summary>Whether the tokenizer puts EOS after a sequence.</summary>
    public bool AddEos { get; init; }

    /// <summary>The chat template, or null.</summary>
    public string? ChatTemplate { get; init; }

    /// <summary>Things the export could not carry over exactly (e.g. an unrecognised pre-tokenizer).</summary>
    public List<string> Warnings { get; } = [];

    /// <summary>
    /// Reads the tokenizer in <paramref name="modelDir"/> for a model whose embedding has <paramref name="rows"/> rows.
    /// </summary>
    /// <exception cref="DpoSharpException">No tokenizer files, a tokenizer kind GGUF has no form for (e.g. Unigram),
    /// or token ids beyond the embedding.</exception>
    public static GgufVocabulary Read(string modelDir, ModelConfig config, int rows)
    {
        ArgumentNullException.ThrowIfNull(config);
        if (!TokenizerFiles.Any(f => File.Exists(Path.Combine(modelDir, f))))
        {
            throw new DpoSharpException($"{modelDir}: no tokenizer files ({string.Join(", ", TokenizerFiles)}); a GGUF file carries the tokenizer, " +
                "so copy the base model's tokenizer files into this folder and export again.");
        }

        var parts = TokenizerLoader.Load(modelDir);
        var tok = new HfTokenizer(parts);
        var spmPath = Path.Combine(modelDir, "tokenizer.model");
        var bpe = parts.File.Bpe;
        string source = parts.File.Source;
        var tokens = new string?[rows];
        var types = new GgufTokenType[rows];
        float[]? scores = null;
        string[]? merges = null;
        string model;
        string? pre = null;
        var warnings = new List<string>();

        void Set(int id, string text, GgufTokenType type, string what)
        {
            if (id < 0 || id >= rows)
            {
                throw new DpoSharpException($"{source}: {what} '{text}' has id {id}, but the model's embedding has {rows} rows (config.json vocab_size {config.VocabSize}); " +
                    "the tokenizer does not belong to this model. Use the tokenizer files the model was trained with.");
            }

            tokens[id] = text;
            types[id] = type;
        }

        if (File.Exists(spmPath) && (bpe is null || bpe.ByteFallback))
        {
            model = "llama";
            var spm = SentencePieceModel.Read(spmPath);
            scores = new float[rows];
            for (int i = 0; i < spm.Pieces.Count; i++)
            {
                var (piece, score, type) = spm.Pieces[i];
                Set(i, piece, type is >= 1 and <= 6 ? (GgufTokenType)type : GgufTokenType.Normal, "piece");
                scores[i] = score;
            }
        }
        else if (bpe is { ByteFallback: true })
        {
            // A SentencePiece-style BPE in tokenizer.json (no tokenizer.model): llama.cpp's SentencePiece tokenizer
            // merges the pair whose result scores highest, so a token made by merge #r scores −r (earlier = better).
            model = "llama";
            scores = new float[rows];
            foreach (var (text, id) in bpe.Vocab)
            {
                bool isByte = text.Length == 6 && text.StartsWith("<0x", StringComparison.Ordinal) && text.EndsWith('>');
                Set(id, text, isByte ? GgufTokenType.Byte : id == bpe.UnkId ? GgufTokenType.Unknown : GgufTokenType.Normal, "token");
            }

            var byId = bpe.Vocab.ToDictionary(kv => kv.Value, kv => kv.Key);
            foreach (var (l, r, rank) in bpe.MergesByRank())
            {
                if (bpe.Vocab.TryGetValue(byId[l] + byId[r], out var merged) && merged < rows && scores[merged] == 0)
                {
                    scores[merged] = -(rank + 1);
                }
            }
        }
        else if (bpe is not null)
        {
            model = "gpt2";
            foreach (var (text, id) in bpe.Vocab)
            {
                Set(id, text, GgufTokenType.Normal, "token");
            }

            var byId = bpe.Vocab.ToDictionary(kv => kv.Value, kv => kv.Key);
            merges = bpe.MergesByRank().Select(m => byId[m.Left] + " " + byId[m.Right]).ToArray();
            pre = PreTokenizerName(modelDir, warnings);
        }
        else
        {
            throw new DpoSharpException($"{source}: this tokenizer kind has no GGUF form DpoSharp writes (supported: byte-level BPE as GPT-2/Llama 3/Qwen2 use, " +
                "SentencePiece BPE as Llama 2/Mistral use).");
        }

        foreach (var a in parts.Added)
        {
            // A piece the SentencePiece model already types (unknown, control, byte) keeps its type.
            if (a.Id >= 0 && a.Id < rows && tokens[a.Id] is not null && types[a.Id] is not GgufTokenType.Normal)
            {
                continue;
            }

            Set(a.Id, a.Content, a.Special ? GgufTokenType.Control : GgufTokenType.UserDefined, "added token");
        }

        for (int i = 0; i < rows; i++)
        {
            if (tokens[i] is null)
            {
                tokens[i] = $"[PAD{i}]";
                types[i] = GgufTokenType.Unused;
            }
        }

        int? Id(string key) => tok.SpecialTokenStrings.TryGetValue(key, out var s) ? tok.TokenToId(s) : null;
        var vocab = new GgufVocabulary
        {
            Model = model,
            Pre = pre,
            Tokens = tokens!,
            TokenTypes = types,
            Scores = scores,
            Merges = merges,
            BosId = tok.BosTokenId ?? config.BosTokenId,
            EosId = tok.EosTokenId ?? (config.EosTokenIds.Count > 0 ? config.EosTokenIds[0] : null),
            UnkId = Id("unk_token") ?? bpe?.UnkId,
            PadId = Id("pad_token"),
            AddBos = tok.AddsBosToken,
            AddEos = tok.AddsEosToken,
            ChatTemplate = tok.ChatTemplate,
        };
        vocab.Warnings.AddRange(warnings);
        return vocab;
    }

    /// <summary>Writes the <c>tokenizer.*</c> keys.</summary>
    public void WriteTo(GgufWriter w)
    {
        ArgumentNullException.ThrowIfNull(w);
        w.AddString("tokenizer.ggml.model", Model);
        if (Pre is not null)
        {
            w.AddString("tokenizer.ggml.pre", Pre);
        }

        w.AddStringArray("tokenizer.ggml.tokens", Tokens);
        if (Scores is not null)
        {
            w.AddFloat32Array("tokenizer.ggml.scores", Scores);
        }

        w.AddInt32Array("tokenizer.ggml.token_type", TokenTypes.Select(t => (int)t).ToArray());
        if (Merges is not null)
        {
            w.AddStringArray("tokenizer.ggml.merges", Merges);
        }

        foreach (var (key, id) in new[] { ("bos", BosId), ("eos", EosId), ("unknown", UnkId), ("padding", PadId) })
        {
            if (id is int v && v >= 0 && v < Tokens.Length)
            {
                w.AddUInt32($"tokenizer.ggml.{key}_token_id", (uint)v);
            }
        }

        w.AddBool("tokenizer.ggml.add_bos_token", AddBos);
        w.AddBool("tokenizer.ggml.add_eos_token", AddEos);
        if (ChatTemplate is not null)
        {
            w.AddString("tokenizer.chat_template", ChatTemplate);
        }
    }

    /// <summary>
    /// <c>tokenizer.ggml.pre</c> for a byte-level BPE: <c>gpt-2</c> for GPT-2's ByteLevel regex, <c>llama-bpe</c> /
    /// <c>qwen2</c> for the Llama 3 / Qwen2 split patterns; otherwise <c>default</c>, with a warning.
    /// </summary>
    private static string PreTokenizerName(string modelDir, List<string> warnings)
    {
        var path = Path.Combine(modelDir, "tokenizer.json");
        if (!File.Exists(path))
        {
            return "gpt-2"; // vocab.json + merges.txt / encoder.json + vocab.bpe: GPT-2's own layout.
        }

        using var doc = JsonFile.ParseDocument(path);
        var patterns = new List<string>();
        bool byteLevelRegex = false;
        void Walk(JsonElement e)
        {
            if (e.ValueKind == JsonValueKind.Object)
            {
                if (e.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String)
                {
                    if (t.GetString() == "Split" && e.TryGetProperty("pattern", out var p) && p.ValueKind == JsonValueKind.Object
                        && p.TryGetProperty("Regex", out var r) && r.ValueKind == JsonValueKind.String)
                    {
                        patterns.Add(r.GetString()!);
                    }

                    if (t.GetString() == "ByteLevel" && (!e.TryGetProperty("use_regex", out var u) || u.ValueKind != JsonValueKind.False))
                    {
                        byteLevelRegex = true;
                    }
                }

                foreach (var prop in e.EnumerateObject())
                {
                    Walk(prop.Value);
                }
            }
            else if (e.ValueKind == JsonValueKind.Array)
            {
                foreach (var item in e.EnumerateArray())
                {
                    Walk(item);
                }
            }
        }

        if (doc.RootElement.ValueKind == JsonValueKind.Object && doc.RootElement.TryGetProperty("pre_tokenizer", out var preTok))
        {
            Walk(preTok);
        }

        switch (patterns)
        {
            case [] when byteLevelRegex:
                return "gpt-2";
            case [Llama3Pattern]:
                return "llama-bpe";
            case [Qwen2Pattern]:
                return "qwen2";
            default:
                warnings.Add($"{path}: pre-tokenizer not recognised (known: GPT-2, Llama 3, Qwen2 patterns); wrote tokenizer.ggml.pre = default, " +
                    "so llama.cpp may split text into words differently from the model's own tokenizer.");
                return "default";
        }
    }
}
