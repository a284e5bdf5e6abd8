using System.Text.Json;

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
    public static AddedToken ReadAddedToken(int id, JsonElement e, string file, string where) => new(
        id,
        e.ValueKind == JsonValueKind.Object && e.TryGetProperty("content", out var content)
            ? IO.JsonFile.String(content, file, where + ".content")
            : throw new DpoSharpException($"{file}: {where} must be an object with a \"content\" string."),
        GetBool(e, "special") ?? false,
        GetBool(e, "lstrip") ?? false,
        GetBool(e, "rstrip") ?? false,
        GetBool(e, "single_word") ?? false);

    public static Dictionary<string, int> ReadVocab(JsonElement el, string file)
    {
        if (el.ValueKind != JsonValueKind.Object)
        {
            throw new DpoSharpException($"{file}: the vocabulary is not a JSON object of token → id.");
        }

        var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var p in el.EnumerateObject())
        {
            var id = IO.JsonFile.Int32(p.Value, file, $"vocab[\"{p.Name}\"]");
            if (id < 0 || id > MaxVocabId)
            {
                throw new DpoSharpException($"{file}: vocab[\"{p.Name}\"] = {id} is not a token id (0..{MaxVocabId}).");
            }

            vocab[p.Name] = id;
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
