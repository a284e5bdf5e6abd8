namespace DpoSharp.Tokenization;

/// <summary>
/// GPT-2's reversible byte ↔ printable-character mapping, as byte-level BPE vocabularies (GPT-2, Phi-2, Qwen2,
/// Llama 3) spell their tokens: printable bytes stand for themselves, the other bytes map to U+0100 onwards in byte
/// order. For writing such vocabularies (e.g. the demo's tokenizer).
/// </summary>
public static class ByteLevelMapping
{
    /// <summary>The character standing for each byte value (256 entries).</summary>
    public static IReadOnlyList<char> ByteToChar => ByteLevel.ByteToChar;

    /// <summary>The UTF-8 bytes of <paramref name="text"/> spelled in the byte-level alphabet.</summary>
    public static string Encode(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        return ByteLevel.Encode(text);
    }
}
