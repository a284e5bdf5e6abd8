using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using DpoSharp.Data.Readers;
using DpoSharp.Tokenization;

namespace DpoSharp.Data;

/// <summary>
/// Turns raw rows of any supported shape into <see cref="PreferenceExample"/>s: standard strings, implicit prompt,
/// conversational <c>{role, content}</c> or ShareGPT <c>{from, value}</c> messages, a <c>conversations</c> column, or
/// pre-tokenized ids. Every problem throws <see cref="DpoSharpException"/> naming the file, the row and the column.
/// </summary>
internal sealed class RowNormalizer(DatasetOptions options)
{
    private const string ConversationsColumn = "conversations";
    private const string PromptIdsColumn = "prompt_input_ids";
    private const string ChosenIdsColumn = "chosen_input_ids";
    private const string RejectedIdsColumn = "rejected_input_ids";

    private PreferenceFormat? format;
    private string? formatWhere;

    /// <summary>The format of the rows seen so far.</summary>
    public PreferenceFormat? Format => format;

    public PreferenceExample Normalize(RawRow row, string file)
    {
        var v = row.Values;
        var where = $"{file} {row.Describe()}";
        if (!v.ContainsKey(options.ChosenColumn) && !v.ContainsKey(options.RejectedColumn) &&
            v.ContainsKey(ChosenIdsColumn) && v.ContainsKey(RejectedIdsColumn))
        {
            return Track(PreTokenized(v, file, row, where), where);
        }

        var chosen = Required(v, options.ChosenColumn, where);
        var rejected = Required(v, options.RejectedColumn, where);
        JsonNode? prompt = null;
        var promptColumn = options.PromptColumn;
        if (promptColumn is not null)
        {
            prompt = Required(v, promptColumn, where);
        }
        else if (v.ContainsKey("prompt"))
        {
            promptColumn = "prompt";
            prompt = Required(v, promptColumn, where);
        }
        else if (v.ContainsKey(ConversationsColumn))
        {
            promptColumn = ConversationsColumn;
            prompt = Required(v, promptColumn, where);
        }

        string? system = null;
        if (v[options.SystemColumn] is JsonNode sys)
        {
            system = AsString(sys, options.SystemColumn, where, allowEmpty: true);
            if (system.Length == 0)
            {
                system = null;
            }
        }

        var conversational = chosen is not JsonValue || rejected is not JsonValue || (prompt is not null && prompt is not JsonValue);
        var example = conversational
            ? Conversational(prompt, promptColumn, chosen, rejected, system, file, row, where)
            : Standard(prompt, promptColumn, chosen, rejected, system, file, row, where);
        return Track(example, where);
    }

    private PreferenceExample Track(PreferenceExample e, string where)
    {
        if (format is null)
        {
            format = e.Format;
            formatWhere = where;
        }
        else if (format != e.Format)
        {
            throw new DpoSharpException(
                $"{where}: this row is {Describe(e.Format)} but {formatWhere} is {Describe(format.Value)}; every row of a dataset must have the same shape.");
        }

        return e;
    }

    private static string Describe(PreferenceFormat f) => f switch
    {
        PreferenceFormat.Standard => "standard text (strings)",
        PreferenceFormat.Conversational => "conversational (message lists)",
        _ => "pre-tokenized (token ids)",
    };

    private PreferenceExample Standard(JsonNode? prompt, string? promptColumn, JsonNode chosenNode, JsonNode rejectedNode,
        string? system, string file, RawRow row, string where)
    {
        var chosen = AsString(chosenNode, options.ChosenColumn, where, allowEmpty: false);
        var rejected = AsString(rejectedNode, options.RejectedColumn, where, allowEmpty: false);
        string promptText;
        var extracted = prompt is null;
        if (prompt is null)
        {
            (promptText, chosen, rejected) = PromptExtraction.Split(chosen, rejected);
        }
        else
        {
            promptText = AsString(prompt, promptColumn!, where, allowEmpty: true);
        }

        return new PreferenceExample
        {
            Format = PreferenceFormat.Standard,
            System = system,
            Prompt = promptText,
            Chosen = chosen,
            Rejected = rejected,
            PromptExtracted = extracted,
            SourceFile = file,
            SourceRow = row.Index,
        };
    }

    private PreferenceExample Conversational(JsonNode? promptNode, string? promptColumn, JsonNode chosenNode, JsonNode rejectedNode,
        string? system, string file, RawRow row, string where)
    {
        var chosen = Messages(chosenNode, options.ChosenColumn, where, stringRole: "assistant");
        var rejected = Messages(rejectedNode, options.RejectedColumn, where, stringRole: "assistant");
        RequireContent(chosen, options.ChosenColumn, where);
        RequireContent(rejected, options.RejectedColumn, where);
        IReadOnlyList<ChatMessage> prompt;
        var extracted = false;
        if (promptNode is null)
        {
            (prompt, chosen, rejected) = PromptExtraction.Split(chosen, rejected);
            extracted = true;
        }
        else
        {
            prompt = Messages(promptNode, promptColumn!, where, stringRole: "user");

            // Some datasets (UltraFeedback-binarized) repeat the prompt turns at the start of chosen/rejected.
            chosen = StripPrefix(chosen, prompt);
            rejected = StripPrefix(rejected, prompt);
        }

        if (system is not null && (prompt.Count == 0 || prompt[0].Role != "system"))
        {
            prompt = [new ChatMessage("system", system), .. prompt];
        }

        return new PreferenceExample
        {
            Format = PreferenceFormat.Conversational,
            PromptMessages = prompt,
            ChosenMessages = chosen,
            RejectedMessages = rejected,
            PromptExtracted = extracted,
            SourceFile = file,
            SourceRow = row.Index,
        };
    }

    private static IReadOnlyList<ChatMessage> StripPrefix(IReadOnlyList<ChatMessage> completion, IReadOnlyList<ChatMessage> prompt)
    {
        foreach (var p in new[] { prompt, prompt.SkipWhile(m => m.Role == "system").ToArray() })
        {
            if (p.Count > 0 && completion.Count > p.Count && completion.Take(p.Count).SequenceEqual(p))
            {
                return completion.Skip(p.Count).ToArray();
            }
        }

        return completion;
    }

    private static void RequireContent(IReadOnlyList<ChatMessage> messages, string column, string where)
    {
        if (messages.Count == 0 || messages.All(m => string.IsNullOrWhiteSpace(m.Content)))
        {
            throw EmptyCompletion(column, where);
        }
    }

    private static DpoSharpException EmptyCompletion(string column, string where) =>
        new($"{where}: column '{column}' is empty; every pair needs a non-empty chosen and rejected completion (remove the row).");

    private static PreferenceExample PreTokenized(JsonObject v, string file, RawRow row, string where)
    {
        var prompt = v[PromptIdsColumn] is JsonNode p ? Ids(p, PromptIdsColumn, where) : [];
        var chosen = Ids(Required(v, ChosenIdsColumn, where), ChosenIdsColumn, where);
        var rejected = Ids(Required(v, RejectedIdsColumn, where), RejectedIdsColumn, where);
        if (chosen.Length == 0 || rejected.Length == 0)
        {
            throw new DpoSharpException(
                $"{where}: column '{(chosen.Length == 0 ? ChosenIdsColumn : RejectedIdsColumn)}' is an empty list; every pair needs at least one completion token (remove the row).");
        }

        return new PreferenceExample
        {
            Format = PreferenceFormat.PreTokenized,
            PromptIds = prompt,
            ChosenIds = chosen,
            RejectedIds = rejected,
            SourceFile = file,
            SourceRow = row.Index,
        };
    }

    private static int[] Ids(JsonNode node, string column, string where)
    {
        if (node is not JsonArray array)
        {
            throw new DpoSharpException($"{where}: column '{column}' must be a list of token ids, found {JsonRowReader.Kind(node)}.");
        }

        var ids = new int[array.Count];
        for (var i = 0; i < ids.Length; i++)
        {
            if (array[i] is not JsonValue value || value.GetValueKind() != JsonValueKind.Number ||
                !TryInteger(value, out var id) || id < 0 || id > int.MaxValue)
            {
                throw new DpoSharpException(
                    $"{where}: column '{column}' item {i} is {Render(array[i])}; token ids must be non-negative integers.");
            }

            ids[i] = (int)id;
        }

        return ids;
    }

    private static bool TryInteger(JsonValue value, out long id)
    {
        // Values read from JSON hold a JsonElement; values from Parquet hold the CLR number itself.
        if (value.TryGetValue<int>(out var i))
        {
            id = i;
            return true;
        }

        if (value.TryGetValue<long>(out id))
        {
            return true;
        }

        id = 0;
        if (decimal.TryParse(value.ToJsonString(), System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var d) &&
            d == decimal.Truncate(d) && d >= 0 && d <= int.MaxValue)
        {
            id = (long)d;
            return true;
        }

        return false;
    }

    private static string Render(JsonNode? n) => n is null ? "null" : n.ToJsonString();

    private static JsonNode Required(JsonObject v, string column, string where)
    {
        if (!v.TryGetPropertyValue(column, out var node))
        {
            var present = string.Join(", ", v.Select(p => p.Key));
            throw new DpoSharpException(
                $"{where}: missing column '{column}'. Columns present: {present}. " +
                "Map your columns with --prompt-column / --chosen-column / --rejected-column.");
        }

        return node ?? throw new DpoSharpException($"{where}: column '{column}' is null; give it a value or remove the row.");
    }

    private static string AsString(JsonNode node, string column, string where, bool allowEmpty)
    {
        if (node is not JsonValue value || value.GetValueKind() != JsonValueKind.String)
        {
            throw new DpoSharpException($"{where}: column '{column}' must be a string, found {JsonRowReader.Kind(node)} ({Shorten(Render(node))}).");
        }

        var s = value.GetValue<string>();
        if (!allowEmpty && string.IsNullOrWhiteSpace(s))
        {
            throw EmptyCompletion(column, where);
        }

        return s;
    }

    private static string Shorten(string s) => s.Length <= 60 ? s : s[..57] + "...";

    /// <summary>A message list from a list of messages, one message object, or a string (one message of
    /// <paramref name="stringRole"/>).</summary>
    private static IReadOnlyList<ChatMessage> Messages(JsonNode node, string column, string where, string stringRole)
    {
        switch (node)
        {
            case JsonValue value when value.GetValueKind() == JsonValueKind.String:
                {
                    var s = value.GetValue<string>();
                    return [new ChatMessage(stringRole, s)];
                }

            case JsonObject obj:
                return [Message(obj, column, where, 0)];
            case JsonArray array:
                {
                    var list = new ChatMessage[array.Count];
                    for (var i = 0; i < list.Length; i++)
                    {
                        if (array[i] is not JsonObject m)
                        {
                            throw new DpoSharpException(
                                $"{where}: column '{column}' item {i} must be a message object {{role, content}}, found {JsonRowReader.Kind(array[i])}.");
                        }

                        list[i] = Message(m, column, where, i);
                    }

                    return list;
                }

            default:
                throw new DpoSharpException(
                    $"{where}: column '{column}' must be a string or a list of {{role, content}} messages, found {JsonRowReader.Kind(node)}.");
        }
    }

    private static ChatMessage Message(JsonObject m, string column, string where, int index)
    {
        var roleNode = m["role"] ?? m["from"];
        var contentNode = m.ContainsKey("content") ? m["content"] : m["value"];
        if (roleNode is null || (!m.ContainsKey("content") && !m.ContainsKey("value")))
        {
            throw new DpoSharpException(
                $"{where}: column '{column}' message {index} needs 'role' and 'content' (or ShareGPT 'from' and 'value'); it has: {string.Join(", ", m.Select(p => p.Key))}.");
        }

        if (roleNode is not JsonValue rv || rv.GetValueKind() != JsonValueKind.String)
        {
            throw new DpoSharpException($"{where}: column '{column}' message {index}: the role must be a string, found {JsonRowReader.Kind(roleNode)}.");
        }

        var role = rv.GetValue<string>() switch
        {
            "human" => "user",
            "gpt" or "bot" or "model" => "assistant",
            var r => r,
        };
        return new ChatMessage(role, Content(contentNode, column, where, index));
    }

    private static string Content(JsonNode? node, string column, string where, int index)
    {
        switch (node)
        {
            case null:
                return "";
            case JsonValue v when v.GetValueKind() == JsonValueKind.String:
                return v.GetValue<string>();
            case JsonArray parts when parts.All(p => p is JsonObject o && o["text"] is JsonValue):
                {
                    // Multimodal-style content: [{"type": "text", "text": "..."}]; only text parts are supported.
                    var sb = new StringBuilder();
                    foreach (var p in parts)
                    {
                        if (p!["type"] is JsonNode typeNode && (typeNode is not JsonValue tv || tv.GetValueKind() != JsonValueKind.String || tv.GetValue<string>() != "text"))
                        {
                            throw new DpoSharpException($"{where}: column '{column}' message {index} has a {typeNode.ToJsonString()} part; only text parts are supported.");
                        }

                        sb.Append(AsString(p["text"]!, column, where, allowEmpty: true));
                    }

                    return sb.ToString();
                }

            default:
                throw new DpoSharpException($"{where}: column '{column}' message {index}: the content must be a string, found {JsonRowReader.Kind(node)}.");
        }
    }
}
