using System.Text;
using DpoSharp.Tokenization;

namespace DpoSharp.Tests.TestSupport;

/// <summary>
/// A tiny deterministic tokenizer for data tests: special tokens <c>&lt;pad&gt;</c>=0, <c>&lt;s&gt;</c>=1,
/// <c>&lt;/s&gt;</c>=2, <c>&lt;|im_start|&gt;</c>=3, <c>&lt;|im_end|&gt;</c>=4; the merge "ab" = 5; every other
/// character c is id 10 + c (c &lt; 256, else 9). Greedy longest match, so expected ids are easy to write by hand.
/// The chat template is ChatML (<c>&lt;|im_start|&gt;role\ncontent&lt;|im_end|&gt;\n</c>), optionally starting with
/// the BOS text.
/// </summary>
public sealed class CharTokenizer : ITokenizer
{
    private static readonly (string Text, int Id)[] Vocab =
    [
        ("<pad>", 0), ("<s>", 1), ("</s>", 2), ("<|im_start|>", 3), ("<|im_end|>", 4), ("ab", 5),
    ];

    /// <summary>Whether prompts get BOS (like Llama), default false (like GPT-2).</summary>
    public bool AddsBosToken { get; init; }

    /// <summary>Whether the chat template writes the BOS text first (like Llama-2's template).</summary>
    public bool TemplateStartsWithBos { get; init; }

    /// <summary>Text of the generation prompt (default <c>&lt;|im_start|&gt;assistant\n</c>).</summary>
    public string GenerationPrompt { get; init; } = "<|im_start|>assistant\n";

    /// <summary>Whether the tokenizer has an EOS token (default true).</summary>
    public bool HasEos { get; init; } = true;

    /// <summary>Id of character <paramref name="c"/>.</summary>
    public static int Id(char c) => c < 256 ? 10 + c : 9;

    /// <summary>Ids of plain text written character by character (no merges, no special tokens).</summary>
    public static int[] Chars(string s) => s.Select(Id).ToArray();

    public int VocabSize => 266;

    public int? BosTokenId => 1;

    public int? EosTokenId => HasEos ? 2 : null;

    public int? PadTokenId => 0;

    public string? BosToken => "<s>";

    public string? EosToken => "</s>";

    public string? ChatTemplate => "chatml";

    public IReadOnlyList<int> Encode(string text, bool addSpecialTokens = false)
    {
        var ids = new List<int>();
        if (addSpecialTokens && AddsBosToken)
        {
            ids.Add(1);
        }

        var i = 0;
        while (i < text.Length)
        {
            var matched = false;
            foreach (var (t, id) in Vocab)
            {
                if (string.CompareOrdinal(text, i, t, 0, t.Length) == 0)
                {
                    ids.Add(id);
                    i += t.Length;
                    matched = true;
                    break;
                }
            }

            if (!matched)
            {
                ids.Add(Id(text[i]));
                i++;
            }
        }

        return ids;
    }

    public string Decode(IEnumerable<int> ids, bool skipSpecialTokens = false)
    {
        var sb = new StringBuilder();
        foreach (var id in ids)
        {
            if (id < 10 && skipSpecialTokens && id != 5)
            {
                continue;
            }

            sb.Append(IdToToken(id));
        }

        return sb.ToString();
    }

    public string IdToToken(int id) => id switch
    {
        < 6 => Vocab.First(v => v.Id == id).Text,
        9 => "?",
        _ => ((char)(id - 10)).ToString(),
    };

    public string ApplyChatTemplate(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt)
    {
        var sb = new StringBuilder();
        if (TemplateStartsWithBos)
        {
            sb.Append("<s>");
        }

        foreach (var m in messages)
        {
            sb.Append("<|im_start|>").Append(m.Role).Append('\n').Append(m.Content).Append("<|im_end|>\n");
        }

        if (addGenerationPrompt)
        {
            sb.Append(GenerationPrompt);
        }

        return sb.ToString();
    }
}
