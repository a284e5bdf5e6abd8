using System.Text.Json;

namespace DpoSharp.Tokenization.Readers;

/// <summary>JSON and vocabulary helpers shared by the tokenizer readers and <see cref="TokenizerLoader"/>.</summary>
internal static class ReaderSupport
{
    public static bool? GetBool(JsonElement? e, string name) =>
        e is JsonElement x && x.ValueKind == JsonValueKind.Object && x.TryGetProperty(name, out var v) && (v.ValueKind == JsonValueKind.True || v.ValueKind == JsonValueKind.False)
            ? v.GetBoolean()
            : null;

    public static JsonDocument? ReadJsonObject(string path) => File.Exists(path) ? ParseJson(path) : null;

    public static JsonDocument ParseJson(string path)
    {
        try
        {
            using var stream = File.OpenRead(path);
            return JsonDocument.Parse(stream, new JsonDocumentOptions { AllowTrailingCommas = true, CommentHandling = JsonCommentHandling.Skip });
        }
        catch (JsonException e)
        {
            throw new DpoSharpException($"{path}: invalid JSON at line {(e.LineNumber ?? 0) + 1}, byte {(e.BytePositionInLine ?? 0) + 1}: {e.Message}", e);
        }
        catch (IOException e)
        {
            throw new DpoSharpException($"{path}: cannot be read ({e.Message}).", e);
        }
    }

    /// <summary>An added token as tokenizer.json's <c>added_tokens</c> and tokenizer_config.json's
    /// <c>added_tokens_decoder</c> write it: <c>{"content": …, "special": …, "lstrip": …, …}</c>.</summary>
    public static AddedToken ReadAddedToken(int id, JsonElement e) => new(
        id,
        e.GetProperty("content").GetString() ?? string.Empty,
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
            vocab[p.Name] = p.Value.GetInt32();
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
