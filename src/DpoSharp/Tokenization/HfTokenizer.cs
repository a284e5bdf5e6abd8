using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using DpoSharp.Tokenization.ChatTemplates;

namespace DpoSharp.Tokenization;

/// <summary>
/// A Hugging Face tokenizer loaded from a model directory: byte-level BPE (GPT-2, CodeGen/Phi-2, Qwen2, Llama-3)
/// and SentencePiece-style BPE with byte fallback (Llama-2, Mistral, TinyLlama), token-for-token as
/// Hugging Face <c>tokenizers</c> encodes, with the special tokens and chat template of
/// <c>tokenizer_config.json</c>.
/// </summary>
/// <remarks>
/// Files read, first found wins: <c>tokenizer.json</c>; <c>vocab.json</c> + <c>merges.txt</c> (GPT-2 layout);
/// <c>encoder.json</c> + <c>vocab.bpe</c> (OpenAI's original GPT-2 files); <c>tokenizer.model</c> (SentencePiece,
/// encoded by Microsoft.ML.Tokenizers' <c>SentencePieceTokenizer</c>). Then <c>tokenizer_config.json</c> and
/// <c>special_tokens_map.json</c> when present. Added and special tokens are matched atomically in the text
/// (leftmost, longest) before BPE runs. BPE results are cached per pre-tokenized word; instances are thread-safe.
/// <see cref="Decode"/> is lossless: Hugging Face's <c>clean_up_tokenization_spaces</c> is not applied.
/// </remarks>
public sealed class HfTokenizer : ITokenizer
{
    private readonly BpeModel? _bpe;
    private readonly Microsoft.ML.Tokenizers.SentencePieceTokenizer? _sentencePiece;
    private readonly TextNormalizer? _normalizer;
    private readonly PreTokenizerStep? _preTokenizer;
    private readonly TokenDecoder _decoder;
    private readonly AddedTokenMatcher _matcher;
    private readonly Dictionary<int, AddedToken> _addedById;
    private readonly Dictionary<string, AddedToken> _addedByContent;
    private readonly string[] _idToToken;
    private readonly Dictionary<string, int> _tokenToId;
    private readonly int[] _prefixIds;
    private readonly int[] _suffixIds;
    private readonly Dictionary<string, string> _specialTokenStrings;
    private ChatTemplate? _compiledTemplate;
    private readonly string _chatTemplateFile;

    /// <summary>A tokenizer of parts <see cref="TokenizerLoader.Load"/> read (for a caller that needs the parts too).</summary>
    internal HfTokenizer(Parts p)
    {
        _bpe = p.File.Bpe;
        _sentencePiece = p.File.SentencePiece;
        _normalizer = p.File.Normalizer;
        _preTokenizer = p.File.PreTokenizer;
        _decoder = p.File.Decoder;
        _addedById = p.Added.ToDictionary(a => a.Id);
        _addedByContent = p.Added.GroupBy(a => a.Content).ToDictionary(g => g.Key, g => g.First(), StringComparer.Ordinal);
        _matcher = new AddedTokenMatcher(p.Added);
        _tokenToId = new Dictionary<string, int>(p.File.Vocab, StringComparer.Ordinal);
        foreach (var a in p.Added)
        {
            _tokenToId[a.Content] = a.Id;
        }

        // Ids are bounded by the readers (ReaderSupport.MaxVocabId); an added token may reuse a vocabulary string under another id.
        var size = p.File.Vocab.Values.Concat(p.Added.Select(a => a.Id)).DefaultIfEmpty(-1).Max() + 1;
        _idToToken = new string[size];
        foreach (var (tok, id) in p.File.Vocab)
        {
            _idToToken[id] = tok;
        }

        foreach (var a in p.Added)
        {
            _idToToken[a.Id] = a.Content;
        }

        Source = p.File.Source;
        _specialTokenStrings = p.SpecialTokenStrings;
        BosToken = p.SpecialTokenStrings.GetValueOrDefault("bos_token");
        EosToken = p.SpecialTokenStrings.GetValueOrDefault("eos_token");
        PadToken = p.SpecialTokenStrings.GetValueOrDefault("pad_token");
        UnkToken = p.SpecialTokenStrings.GetValueOrDefault("unk_token");
        BosTokenId = BosToken is null ? null : TokenToId(BosToken);
        EosTokenId = EosToken is null ? null : TokenToId(EosToken);
        var padId = PadToken is null ? null : TokenToId(PadToken);
        PadTokenId = padId ?? EosTokenId;
        if (padId is null && EosToken is not null)
        {
            PadToken = EosToken;
        }

        _prefixIds = p.PrefixIds;
        _suffixIds = p.SuffixIds;
        AddsBosToken = BosTokenId is int b && _prefixIds.Contains(b);
        AddsEosToken = EosTokenId is int e && _suffixIds.Contains(e);
        ChatTemplate = p.ChatTemplate;
        _chatTemplateFile = p.ChatTemplateFile ?? Source;
    }

    /// <summary>Where the vocabulary was read from (a file path).</summary>
    public string Source { get; }

    /// <inheritdoc/>
    public int VocabSize => _idToToken.Length;

    /// <inheritdoc/>
    public int? BosTokenId { get; }

    /// <inheritdoc/>
    public int? EosTokenId { get; }

    /// <inheritdoc/>
    public int? PadTokenId { get; }

    /// <inheritdoc/>
    public string? BosToken { get; }

    /// <inheritdoc/>
    public string? EosToken { get; }

    /// <summary>PAD token text (EOS when the model has no pad token), or null.</summary>
    public string? PadToken { get; }

    /// <summary>Unknown-token text, or null.</summary>
    public string? UnkToken { get; }

    /// <inheritdoc/>
    public bool AddsBosToken { get; }

    /// <summary>Whether <see cref="Encode"/> with special tokens appends EOS.</summary>
    public bool AddsEosToken { get; }

    /// <inheritdoc/>
    public string? ChatTemplate { get; }

    /// <summary>Added tokens (special and not), matched atomically in text.</summary>
    public IReadOnlyCollection<AddedToken> AddedTokens => _addedById.Values;

    /// <summary>The special-token strings by their tokenizer_config name (<c>bos_token</c>, <c>eos_token</c>, …).</summary>
    public IReadOnlyDictionary<string, string> SpecialTokenStrings => _specialTokenStrings;

    /// <summary>Loads the tokenizer of a model directory (see the class remarks for the files read).</summary>
    /// <exception cref="DpoSharpException">The directory or its tokenizer files are missing or malformed.</exception>
    public static HfTokenizer Load(string modelDir) => new(TokenizerLoader.Load(modelDir));

    /// <summary>The id of a token string (vocabulary or added token), or null.</summary>
    public int? TokenToId(string token) => _tokenToId.TryGetValue(token, out var id) ? id : null;

    /// <inheritdoc/>
    public string IdToToken(int id)
    {
        if ((uint)id >= (uint)_idToToken.Length || _idToToken[id] is null)
        {
            throw new DpoSharpException($"Token id {id} is outside the vocabulary of {Source} (size {VocabSize}).");
        }

        return _idToToken[id];
    }

    /// <inheritdoc/>
    public IReadOnlyList<int> Encode(string text, bool addSpecialTokens = false)
    {
        ArgumentNullException.ThrowIfNull(text);
        var ids = new List<int>(text.Length / 3 + 4);
        if (addSpecialTokens)
        {
            ids.AddRange(_prefixIds);
        }

        if (_matcher.IsEmpty)
        {
            EncodePlain(text, true, ids);
        }
        else
        {
            foreach (var (start, piece, token) in _matcher.Split(text))
            {
                if (token is not null)
                {
                    ids.Add(token.Id);
                }
                else
                {
                    EncodePlain(piece, start == 0, ids);
                }
            }
        }

        if (addSpecialTokens)
        {
            ids.AddRange(_suffixIds);
        }

        return ids;
    }

    /// <summary>Token ids of <paramref name="text"/> with every added/special token spelled out as ordinary text
    /// (like tiktoken's <c>encode_ordinary</c>): safe for untrusted text that may contain <c>&lt;|endoftext|&gt;</c>.</summary>
    public IReadOnlyList<int> EncodeOrdinary(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var ids = new List<int>(text.Length / 3 + 4);
        EncodePlain(text, true, ids);
        return ids;
    }

    /// <inheritdoc/>
    public string Decode(IEnumerable<int> ids, bool skipSpecialTokens = false)
    {
        ArgumentNullException.ThrowIfNull(ids);
        var tokens = new List<string>();
        foreach (var id in ids)
        {
            if (skipSpecialTokens && _addedById.TryGetValue(id, out var a) && a.Special)
            {
                continue;
            }

            tokens.Add(IdToToken(id));
        }

        return tokens.Count == 0 ? string.Empty : string.Concat(_decoder.Decode(tokens));
    }

    /// <inheritdoc/>
    public string ApplyChatTemplate(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt) =>
        ApplyChatTemplate(messages, addGenerationPrompt, null);

    /// <summary>Renders <paramref name="messages"/> with <see cref="ChatTemplate"/>, with extra template variables
    /// (e.g. <c>date_string</c>) on top of <c>messages</c>, <c>add_generation_prompt</c>, the special-token strings
    /// and <c>tools = none</c>.</summary>
    /// <exception cref="DpoSharpException">No template, or the template raised / uses unsupported syntax.</exception>
    public string ApplyChatTemplate(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt, IReadOnlyDictionary<string, object?>? extraVariables)
    {
        ArgumentNullException.ThrowIfNull(messages);
        if (ChatTemplate is null)
        {
            throw new DpoSharpException($"The tokenizer at {Source} has no chat_template (tokenizer_config.json); conversational data needs a model with a chat template.");
        }

        try
        {
            _compiledTemplate ??= ChatTemplates.ChatTemplate.Parse(ChatTemplate);
        }
        catch (DpoSharpException e)
        {
            throw new DpoSharpException($"{_chatTemplateFile}: {e.Message}", e);
        }

        var vars = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (var (k, v) in _specialTokenStrings)
        {
            vars[k] = v;
        }

        vars["tools"] = null;
        if (extraVariables is not null)
        {
            foreach (var (k, v) in extraVariables)
            {
                vars[k] = v;
            }
        }

        try
        {
            return _compiledTemplate.Render(messages, addGenerationPrompt, vars);
        }
        catch (DpoSharpException e) when (e.Message.StartsWith("Chat template:", StringComparison.Ordinal))
        {
            throw new DpoSharpException($"{_chatTemplateFile}: {e.Message}", e);
        }
    }

    private void EncodePlain(string text, bool isFirst, List<int> ids)
    {
        if (text.Length == 0)
        {
            return;
        }

        if (_sentencePiece is not null)
        {
            ids.AddRange(_sentencePiece.EncodeToIds(text, addBeginningOfSentence: false, addEndOfSentence: false, considerPreTokenization: true, considerNormalization: true));
            return;
        }

        var normalized = _normalizer is null ? text : _normalizer.Normalize(text);
        if (_preTokenizer is null)
        {
            _bpe!.EncodeWord(normalized, ids);
            return;
        }

        var words = new List<string>();
        _preTokenizer.Split(normalized, isFirst, words);
        foreach (var w in words)
        {
            _bpe!.EncodeWord(w, ids);
        }
    }

    /// <summary>Everything a loaded tokenizer is made of.</summary>
    internal sealed class Parts
    {
        /// <summary>What the tokenizer file gave: model, normalizer, pre-tokenizer, decoder, vocabulary.</summary>
        public required Readers.TokenizerFileContents File { get; init; }

        public required List<AddedToken> Added { get; init; }

        public required Dictionary<string, string> SpecialTokenStrings { get; init; }

        public required int[] PrefixIds { get; init; }

        public required int[] SuffixIds { get; init; }

        public string? ChatTemplate { get; init; }

        /// <summary>The file the chat template came from (named in template errors).</summary>
        public string? ChatTemplateFile { get; init; }
    }
}
