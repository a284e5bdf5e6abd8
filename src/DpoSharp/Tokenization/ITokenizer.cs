namespace DpoSharp.Tokenization;

/// <summary>One chat message: <c>{role, content}</c>.</summary>
public sealed record ChatMessage(string Role, string Content);

/// <summary>
/// A text tokenizer with the special tokens of its model (from <c>tokenizer.json</c> + <c>tokenizer_config.json</c>).
/// Implemented by <c>HfTokenizer</c>; tests may supply their own.
/// </summary>
public interface ITokenizer
{
    /// <summary>Token ids of <paramref name="text"/>. With <paramref name="addSpecialTokens"/> the model's
    /// post-processor tokens are added (BOS for Llama-2, nothing for GPT-2).</summary>
    IReadOnlyList<int> Encode(string text, bool addSpecialTokens = false);

    /// <summary>Text of <paramref name="ids"/>; special tokens are kept unless <paramref name="skipSpecialTokens"/>.</summary>
    string Decode(IEnumerable<int> ids, bool skipSpecialTokens = false);

    /// <summary>The token string of one id (special tokens visible, e.g. <c>&lt;|endoftext|&gt;</c>).</summary>
    string IdToToken(int id);

    /// <summary>Vocabulary size including added tokens.</summary>
    int VocabSize { get; }

    /// <summary>BOS id, or null when the model has none.</summary>
    int? BosTokenId { get; }

    /// <summary>EOS id, or null when the model has none.</summary>
    int? EosTokenId { get; }

    /// <summary>PAD id; falls back to EOS when the model has no pad token.</summary>
    int? PadTokenId { get; }

    /// <summary>BOS token text (for chat templates' <c>bos_token</c>), or null.</summary>
    string? BosToken { get; }

    /// <summary>EOS token text (for chat templates' <c>eos_token</c>), or null.</summary>
    string? EosToken { get; }

    /// <summary>Whether <see cref="Encode"/> with special tokens prepends BOS.</summary>
    bool AddsBosToken { get; }

    /// <summary>The Jinja chat template from tokenizer_config.json, or null.</summary>
    string? ChatTemplate { get; }

    /// <summary>Renders <paramref name="messages"/> with <see cref="ChatTemplate"/>.</summary>
    /// <exception cref="DpoSharpException">No template, or the template raised / uses unsupported syntax.</exception>
    string ApplyChatTemplate(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt);
}
