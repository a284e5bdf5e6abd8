using DpoSharp.Tokenization;

namespace DpoSharp.Data;

/// <summary>
/// Recovers the prompt of an implicit-prompt pair (only chosen and rejected are given, each a full text or
/// conversation) as their shared beginning, as TRL's <c>extract_prompt</c> does.
/// </summary>
public static class PromptExtraction
{
    /// <summary>The marker after which an Anthropic HH-style assistant turn starts.</summary>
    public const string AssistantMarker = "\n\nAssistant:";

    /// <summary>
    /// Splits two full texts into (prompt, chosen completion, rejected completion). The prompt is the longest common
    /// prefix, cut back to the end of the last shared <see cref="AssistantMarker"/> when there is one (so HH data gives
    /// prompt = everything up to and including <c>\n\nAssistant:</c>); otherwise, as in TRL, a space just before the
    /// point where the texts differ goes to the completions.
    /// </summary>
    public static (string Prompt, string Chosen, string Rejected) Split(string chosen, string rejected)
    {
        var common = chosen.AsSpan().CommonPrefixLength(rejected);
        int cut;
        var marker = chosen.AsSpan(0, common).LastIndexOf(AssistantMarker, StringComparison.Ordinal);
        if (marker >= 0)
        {
            cut = marker + AssistantMarker.Length;
        }
        else
        {
            cut = common;
            if (cut > 0 && cut < Math.Max(chosen.Length, rejected.Length) && chosen[cut - 1] == ' ')
            {
                cut--;
            }
        }

        return (chosen[..cut], chosen[cut..], rejected[cut..]);
    }

    /// <summary>
    /// Splits two full conversations into (prompt messages, chosen completion, rejected completion): the prompt is
    /// the leading messages both share (same role and content).
    /// </summary>
    public static (IReadOnlyList<ChatMessage> Prompt, IReadOnlyList<ChatMessage> Chosen, IReadOnlyList<ChatMessage> Rejected) Split(
        IReadOnlyList<ChatMessage> chosen, IReadOnlyList<ChatMessage> rejected)
    {
        var n = 0;
        while (n < chosen.Count && n < rejected.Count && chosen[n] == rejected[n])
        {
            n++;
        }

        // Identical conversations: keep the final turn as the completion so the pair still has one.
        if (n == chosen.Count && n == rejected.Count && n > 0)
        {
            n--;
        }

        return (chosen.Take(n).ToArray(), chosen.Skip(n).ToArray(), rejected.Skip(n).ToArray());
    }
}
