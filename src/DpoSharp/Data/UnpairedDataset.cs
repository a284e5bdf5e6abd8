using System.Text.Json.Nodes;
using DpoSharp.Data.Readers;
using DpoSharp.Tokenization;

namespace DpoSharp.Data;

/// <summary>
/// One unpaired example for KTO: a prompt and one completion (held as a <see cref="PreferenceExample"/> whose chosen
/// and rejected completions are both the completion, so tokenization and chat templates are DPO's), and its label.
/// </summary>
/// <param name="Example">Prompt and completion (chosen = rejected = the completion).</param>
/// <param name="Label">True: a desirable completion; false: an undesirable one.</param>
public sealed record UnpairedExample(PreferenceExample Example, bool Label);

/// <summary>Unpaired examples read from a dataset (TRL's KTO data: <c>prompt</c>/<c>completion</c>/<c>label</c>).</summary>
public sealed class UnpairedDataset
{
    /// <summary>The examples, in file order (unpaired preference data: every chosen, then every rejected).</summary>
    public required IReadOnlyList<UnpairedExample> Examples { get; init; }

    /// <summary>The data files read.</summary>
    public required IReadOnlyList<string> Files { get; init; }

    /// <summary>True when the rows were preference pairs, unpaired by <see cref="UnpairedDatasetLoader.Unpair"/>.</summary>
    public bool FromPairs { get; init; }

    /// <summary>Non-fatal findings, one sentence each.</summary>
    public IReadOnlyList<string> Warnings { get; init; } = [];

    /// <summary>Desirable examples.</summary>
    public int DesirableCount => Examples.Count(e => e.Label);

    /// <summary>The examples as a preference dataset of identical pairs, for <see cref="PairTokenizer"/>
    /// (<see cref="TokenizedPair.SourceIndex"/> = the index in <see cref="Examples"/>).</summary>
    public PreferenceDataset AsPairs() => new()
    {
        Examples = [.. Examples.Select(e => e.Example)],
        Format = Examples.Count > 0 ? Examples[0].Example.Format : PreferenceFormat.Standard,
        Files = Files,
    };
}

/// <summary>
/// Reads KTO data (TRL's <c>KTOTrainer</c> shapes) from anything <see cref="PreferenceDatasetLoader"/> reads:
/// rows of <c>prompt</c>, <c>completion</c>, <c>label</c> (strings, or conversational message lists); rows of
/// <c>messages</c> + <c>label</c>, where the last assistant message is the completion and the messages before it the
/// prompt; or preference pairs, unpaired as TRL's <c>unpair_preference_dataset</c> does (every chosen completion with
/// label true, then every rejected one with label false, each with its pair's prompt).
/// </summary>
public static class UnpairedDatasetLoader
{
    /// <summary>The label column.</summary>
    public const string LabelColumn = "label";

    /// <summary>The completion column.</summary>
    public const string CompletionColumn = "completion";

    /// <summary>The conversation column of <c>messages</c> + <c>label</c> rows.</summary>
    public const string MessagesColumn = "messages";

    /// <summary>Loads and normalises the data at <paramref name="path"/> (a file or a dataset folder).</summary>
    /// <exception cref="DpoSharpException">A row is unusable; the message names the file, row and column.</exception>
    public static UnpairedDataset Load(string path, DatasetOptions? options = null)
    {
        options ??= new DatasetOptions();
        options.Validate();
        var (files, _, _, notes) = PreferenceDatasetLoader.ResolveFiles(path, options.Split);
        var normalizer = new RowNormalizer(options);
        var unpaired = new List<UnpairedExample>();
        var pairs = new List<PreferenceExample>();
        string? firstKind = null;
        foreach (var file in files)
        {
            foreach (var row in PreferenceDatasetLoader.ReadRows(file, options, out _))
            {
                var where = $"{file} {row.Describe()}";
                bool isUnpaired = row.Values.ContainsKey(LabelColumn);
                var kind = isUnpaired ? "unpaired (label)" : "preference pair";
                firstKind ??= kind;
                if (kind != firstKind)
                {
                    throw new DpoSharpException($"{where}: a {kind} row among {firstKind} rows; give one kind of row per dataset.");
                }

                if (isUnpaired)
                {
                    var label = ParseLabel(row.Values[LabelColumn], where);
                    var asPair = new RawRow(row.Index, row.Line, ToPairShape(row.Values, options, where));
                    unpaired.Add(new UnpairedExample(normalizer.Normalize(asPair, file), label));
                }
                else
                {
                    pairs.Add(normalizer.Normalize(row, file));
                }
            }
        }

        return new UnpairedDataset
        {
            Examples = pairs.Count > 0 ? Unpair(pairs) : unpaired,
            Files = files,
            FromPairs = pairs.Count > 0,
            Warnings = notes,
        };
    }

    /// <summary>
    /// TRL's <c>unpair_preference_dataset</c>: for n pairs, 2n examples — the n chosen completions with label true,
    /// then the n rejected ones with label false, each with its pair's prompt (and system prompt).
    /// </summary>
    public static IReadOnlyList<UnpairedExample> Unpair(IReadOnlyList<PreferenceExample> pairs)
    {
        ArgumentNullException.ThrowIfNull(pairs);
        var chosen = pairs.Select(p => new UnpairedExample(
            CopyWith(p, p.Chosen, p.ChosenMessages, p.ChosenIds), true));
        var rejected = pairs.Select(p => new UnpairedExample(
            CopyWith(p, p.Rejected, p.RejectedMessages, p.RejectedIds), false));
        return [.. chosen, .. rejected];
    }

    private static PreferenceExample CopyWith(PreferenceExample p, string? text, IReadOnlyList<ChatMessage>? messages, IReadOnlyList<int>? ids) => new()
    {
        Format = p.Format,
        System = p.System,
        Prompt = p.Prompt,
        PromptMessages = p.PromptMessages,
        PromptIds = p.PromptIds,
        Chosen = text,
        Rejected = text,
        ChosenMessages = messages,
        RejectedMessages = messages,
        ChosenIds = ids,
        RejectedIds = ids,
        PromptExtracted = p.PromptExtracted,
        SourceFile = p.SourceFile,
        SourceRow = p.SourceRow,
    };

    private static bool ParseLabel(JsonNode? node, string where)
    {
        if (node is JsonValue v)
        {
            if (v.TryGetValue<bool>(out var b))
            {
                return b;
            }

            if (v.TryGetValue<long>(out var n) && n is 0 or 1)
            {
                return n == 1;
            }

            if (v.TryGetValue<string>(out var s))
            {
                switch (s.Trim().ToLowerInvariant())
                {
                    case "true" or "1":
                        return true;
                    case "false" or "0":
                        return false;
                }
            }
        }

        throw new DpoSharpException($"{where}: column '{LabelColumn}' must be true or false (desirable or not), got {node?.ToJsonString() ?? "null"}.");
    }

    // prompt/completion (or messages) → the prompt/chosen/rejected shape RowNormalizer reads, chosen = rejected.
    private static JsonObject ToPairShape(JsonObject v, DatasetOptions options, string where)
    {
        var shaped = new JsonObject();
        var promptColumn = options.PromptColumn ?? "prompt";
        JsonNode? prompt, completion;
        if (!v.ContainsKey(CompletionColumn) && v[MessagesColumn] is JsonArray messages)
        {
            int last = -1;
            for (int i = 0; i < messages.Count; i++)
            {
                if (messages[i] is JsonObject m && (m["role"] ?? m["from"])?.GetValue<string>() is "assistant" or "gpt")
                {
                    last = i;
                }
            }

            if (last < 0 || last != messages.Count - 1)
            {
                throw new DpoSharpException($"{where}: column '{MessagesColumn}' must end with an assistant message (the completion); " +
                    (last < 0 ? "it has none." : "messages follow the last assistant message."));
            }

            prompt = new JsonArray([.. messages.Take(last).Select(m => m!.DeepClone())]);
            completion = new JsonArray(messages[last]!.DeepClone());
        }
        else
        {
            completion = v[CompletionColumn] ?? throw new DpoSharpException($"{where}: no '{CompletionColumn}' column (KTO rows: prompt, completion, label; or messages, label).");
            prompt = v[promptColumn] ?? throw new DpoSharpException($"{where}: no '{promptColumn}' column (KTO rows: prompt, completion, label; or messages, label).");
            prompt = prompt.DeepClone();
        }

        shaped[promptColumn] = prompt;
        shaped[options.ChosenColumn] = completion.DeepClone();
        shaped[options.RejectedColumn] = completion.DeepClone();
        if (v[options.SystemColumn] is JsonNode system)
        {
            shaped[options.SystemColumn] = system.DeepClone();
        }

        return shaped;
    }
}

/// <summary>One unpaired example after tokenization: prompt ids, completion ids, label.</summary>
public sealed record TokenizedUnpaired(int[] PromptIds, int[] CompletionIds, bool Label)
{
    /// <summary>Index of the example in its <see cref="UnpairedDataset"/>.</summary>
    public int SourceIndex { get; init; }
}

/// <summary>KTO training (and evaluation) data tokenized for a run, as <see cref="PreparedPreferenceData"/> for pairs.</summary>
/// <param name="Train">The tokenized training examples.</param>
/// <param name="Eval">The tokenized evaluation examples, or null.</param>
/// <param name="Tokenization">The underlying tokenization (statistics, warnings, pad id, settings key).</param>
public sealed record PreparedUnpairedData(IReadOnlyList<TokenizedUnpaired> Train, IReadOnlyList<TokenizedUnpaired>? Eval, PreparedPreferenceData Tokenization)
{
    /// <summary>The pad id.</summary>
    public int PadTokenId => Tokenization.PadTokenId;

    /// <summary>Tokenizes with <see cref="PairTokenizer"/> (the DPO rules: chat template, truncation, drops).</summary>
    public static PreparedUnpairedData Create(TokenizationOptions options, ITokenizer tokenizer, UnpairedDataset train, UnpairedDataset? eval)
    {
        ArgumentNullException.ThrowIfNull(train);
        var prepared = PreparedPreferenceData.Create(options, tokenizer, train.AsPairs(), eval?.AsPairs());
        return new PreparedUnpairedData(FromPairs(prepared.Train.Pairs, train), eval is null ? null : FromPairs(prepared.Eval!.Pairs, eval), prepared);
    }

    /// <summary>Tokenized identical pairs back to unpaired examples, with the labels of <paramref name="dataset"/>.</summary>
    public static IReadOnlyList<TokenizedUnpaired> FromPairs(IReadOnlyList<TokenizedPair> pairs, UnpairedDataset dataset)
    {
        ArgumentNullException.ThrowIfNull(pairs);
        ArgumentNullException.ThrowIfNull(dataset);
        return [.. pairs.Select(p => new TokenizedUnpaired(p.PromptIds, p.ChosenIds, dataset.Examples[p.SourceIndex].Label) { SourceIndex = p.SourceIndex })];
    }
}
