namespace DpoSharp.Tokenization.ChatTemplates;

/// <summary>A parsed Hugging Face chat template (Jinja subset).</summary>
public sealed class ChatTemplate
{
    private ChatTemplate()
    {
    }

    /// <summary>Parses a template.</summary>
    public static ChatTemplate Parse(string template) => throw new NotImplementedException(template);

    /// <summary>Renders messages.</summary>
    public string Render(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt, IReadOnlyDictionary<string, object?> variables) => throw new NotImplementedException();
}
