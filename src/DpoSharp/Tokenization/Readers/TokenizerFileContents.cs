namespace DpoSharp.Tokenization.Readers;

/// <summary>
/// What one tokenizer source format provides (tokenizer.json; vocab.json + merges.txt; encoder.json + vocab.bpe;
/// tokenizer.model), before <see cref="TokenizerLoader"/> applies tokenizer_config.json and special_tokens_map.json.
/// </summary>
internal sealed class TokenizerFileContents
{
    /// <summary>The file the tokenizer was read from.</summary>
    public required string Source { get; init; }

    public BpeModel? Bpe { get; init; }

    public Microsoft.ML.Tokenizers.SentencePieceTokenizer? SentencePiece { get; init; }

    public TextNormalizer? Normalizer { get; init; }

    public PreTokenizerStep? PreTokenizer { get; init; }

    public required TokenDecoder Decoder { get; init; }

    public required IReadOnlyDictionary<string, int> Vocab { get; init; }

    /// <summary>The added tokens the file declares; the loader appends those of the configuration.</summary>
    public List<AddedToken> Added { get; init; } = [];

    /// <summary>Ids the file's post-processor puts before a sequence.</summary>
    public int[] PrefixIds { get; init; } = [];

    /// <summary>Ids the file's post-processor puts after a sequence.</summary>
    public int[] SuffixIds { get; init; } = [];

    /// <summary>True when <see cref="PrefixIds"/>/<see cref="SuffixIds"/> come from a post-processor that stands
    /// unless a Llama-style configuration overrides it; false when add_bos_token / add_eos_token always decide.</summary>
    public bool UsePostProcessorDefaults { get; init; }

    /// <summary>add_bos_token when the configuration does not set it (null: no default).</summary>
    public bool? DefaultAddBos { get; init; }

    /// <summary>Special-token strings the format implies, in order; each applies only where the configuration
    /// names no token for that key.</summary>
    public IReadOnlyList<(string Key, string Token)> DefaultSpecialTokens { get; init; } = [];
}
