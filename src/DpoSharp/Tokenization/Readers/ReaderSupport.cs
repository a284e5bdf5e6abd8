using System.Text.Json;
using DpoSharp.IO;

namespace DpoSharp.Tokenization.Readers;

/// <summary>JSON and vocabulary helpers shared by the tokenizer readers and <see cref="TokenizerLoader"/>.</summary>
internal static class ReaderSupport
{
    /// <summary>Largest token id accepted (tables are sized by the largest id; the largest published vocabularies have ~260k tokens).</summary>
    public const int MaxVocabId = 4_000_000;

    public static bool? GetBool(JsonElement? e, string name) =>
        e is JsonElement x && x.ValueKind == JsonValueKind.Object && x.TryGetProperty(name, out var v) && (v.ValueKind == JsonValueKind.True || v.ValueKind == JsonValueKind.False)
            ? v.GetBoolean()
            : null;

    public static JsonDocument? ReadJsonObject(string path) => File.Exists(path) ? ParseJson(path) : null;

    public static JsonDocument ParseJson(string path) => IO.JsonFile.ParseDocument(path);

    /// <summary>An added token as tokenizer.json's <c>added_tokens</c> and tokenizer_config.json's
    /// <c>added_tokens_decoder</c> write it: <c>{"content": …, "special": …, "lstrip": …, …}</c>.</summary>
    public static AddedToken ReadAddedToken(int id, JsonAt e) => new(
        id,
        e.Object().Get("content").String(),
        GetBool(e.Element, "special") ?? false,
        GetBool(e.Element, "lstrip") ?? false,
        GetBool(e.Element, "rstrip") ?? false,
        GetBool(e.Element, "single_word") ?? false);

    /// <summary>A vocabulary object of token → id (ids in 0..<see cref="MaxVocabId"/>).</summary>
    public static Dictionary<string, int> ReadVocab(JsonAt el)
    {
        if (el.Kind != JsonValueKind.Object)
        {
            throw el.WrongType("an object of token → id (the vocabulary)");
        }

        var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var (name, value) in el.Members())
        {
            vocab[name] = TokenizerJsonComponents.TokenId(value);
        }

        return vocab;
    }

    /// <summary>True when no vocabulary entry has ▁ after another character (so BPE merges never cross such a boundary).</summary>
    public static bool IsMetaspaceSplitSafe(Dictionary<string, int> vocab)
    {
        foreach (var tok in vocab.Keys)
        {
            for (var i = 1; i < tok.Length; i++)
            {
                if (tok[i] == '▁' && tok[i - 1] != '▁')
                {
                    return false;
                }
            }
        }

        return true;
    }
}
