namespace DpoSharp.Tokenization.ChatTemplates;

/// <summary>
/// A Hugging Face chat template (the Jinja <c>chat_template</c> of tokenizer_config.json), parsed once and rendered
/// with Hugging Face's settings (<c>trim_blocks</c>, <c>lstrip_blocks</c>, no autoescape).
/// </summary>
/// <remarks>
/// Supported: <c>{{ }}</c>, <c>{% %}</c>, <c>{# #}</c>, <c>-</c>/<c>+</c> whitespace control; for (with else,
/// inline if, tuple unpacking, <c>loop.*</c>, break/continue), if/elif/else, set (incl. namespace attributes and
/// block set), macro, generation; literals, lists, dicts, attribute/item access, slicing, arithmetic, <c>~</c>,
/// comparisons, <c>in</c>/<c>not in</c>, <c>and/or/not</c>, <c>is</c> tests, inline if-else, common filters and
/// Python string/dict methods; globals <c>raise_exception</c>, <c>namespace</c>, <c>range</c>, <c>dict</c>,
/// <c>strftime_now</c>. Anything else is a <see cref="DpoSharpException"/> naming the construct and its position.
/// </remarks>
public sealed class ChatTemplate
{
    private readonly IReadOnlyList<Node> _nodes;

    private ChatTemplate(string source, IReadOnlyList<Node> nodes)
    {
        Source = source;
        _nodes = nodes;
    }

    /// <summary>The template text.</summary>
    public string Source { get; }

    /// <summary>Parses <paramref name="template"/>.</summary>
    /// <exception cref="DpoSharpException">Syntax error or unsupported construct (message names it and its line/column).</exception>
    public static ChatTemplate Parse(string template)
    {
        ArgumentNullException.ThrowIfNull(template);
        return new ChatTemplate(template, JinjaParser.Parse(template));
    }

    /// <summary>Renders a conversation: <c>messages</c> (each <c>{role, content}</c>), <c>add_generation_prompt</c>,
    /// plus <paramref name="variables"/> (special tokens such as <c>bos_token</c>, <c>tools</c>, …).</summary>
    /// <exception cref="ChatTemplateRaisedException">The template called <c>raise_exception</c>.</exception>
    /// <exception cref="DpoSharpException">The template failed (undefined value, type error, unsupported construct).</exception>
    public string Render(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt, IReadOnlyDictionary<string, object?>? variables = null)
    {
        ArgumentNullException.ThrowIfNull(messages);
        var context = new Dictionary<string, object?>(StringComparer.Ordinal);
        if (variables is not null)
        {
            foreach (var (k, v) in variables)
            {
                context[k] = v;
            }
        }

        context["messages"] = messages;
        context["add_generation_prompt"] = addGenerationPrompt;
        return Render(context);
    }

    /// <summary>Renders with an arbitrary context (.NET strings, numbers, bools, lists, dictionaries, <see cref="ChatMessage"/>).</summary>
    public string Render(IReadOnlyDictionary<string, object?> context)
    {
        ArgumentNullException.ThrowIfNull(context);
        return new JinjaEvaluator(Source).Render(_nodes, context.ToDictionary(p => p.Key, p => p.Value, StringComparer.Ordinal));
    }
}
