using System.Security.Cryptography;
using System.Text;
using DpoSharp.Tokenization;

namespace DpoSharp.Data;

/// <summary>
/// Training (and evaluation) preference data tokenized for a run: the pairs TRL's DPOTrainer would train on
/// (chat templates for conversational data, truncation as <see cref="TokenizationOptions"/> say, pairs that cannot
/// keep a completion token dropped and counted), the pad id batches use, and a key of the tokenization settings
/// (for reference log-prob caches).
/// </summary>
/// <param name="Train">The tokenized training data.</param>
/// <param name="Eval">The tokenized evaluation data, or null.</param>
/// <param name="PadTokenId">The tokenizer's pad id, else its EOS id.</param>
/// <param name="Key">The tokenization settings (lengths, truncation, vocabulary size, pad id, chat template hash).</param>
public sealed record PreparedPreferenceData(TokenizationResult Train, TokenizationResult? Eval, int PadTokenId, string Key)
{
    /// <summary>Tokenizes <paramref name="train"/> and <paramref name="eval"/> with <paramref name="tokenizer"/>.</summary>
    /// <exception cref="DpoSharpException">No pair survives tokenization, or the tokenizer has no pad/EOS token.</exception>
    public static PreparedPreferenceData Create(TokenizationOptions options, ITokenizer tokenizer, PreferenceDataset train, PreferenceDataset? eval)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(train);
        var pairTokenizer = new PairTokenizer(tokenizer, options);
        var t = Tokenize(pairTokenizer, train);
        var e = eval is null ? null : Tokenize(pairTokenizer, eval);
        int pad = tokenizer.PadTokenId ?? tokenizer.EosTokenId
            ?? throw new DpoSharpException("the tokenizer has neither a pad nor an EOS token; add pad_token to tokenizer_config.json.");
        var template = tokenizer.ChatTemplate is null ? "" : Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(tokenizer.ChatTemplate)));
        var truncation = options.TruncationMode == TruncationMode.KeepStart ? "keep_start" : "keep_end";
        var key = string.Join(";", $"max_length={options.MaxLength}", $"max_prompt_length={options.MaxPromptLength}", $"max_completion_length={options.MaxCompletionLength}",
            $"truncation_mode={truncation}", $"vocab={tokenizer.VocabSize}", $"pad={pad}", $"template={template}");
        return new PreparedPreferenceData(t, e, pad, key);
    }

    private static TokenizationResult Tokenize(PairTokenizer tokenizer, PreferenceDataset dataset)
    {
        var result = tokenizer.Tokenize(dataset);
        if (result.Pairs.Count == 0)
        {
            throw new DpoSharpException($"{string.Join(", ", dataset.Files)}: no pair survives tokenization ({string.Join("; ", result.Stats.Dropped.Select(kv => $"{kv.Value} × {kv.Key}"))}); raise max_length or check the data.");
        }

        return result;
    }
}
