using System.CommandLine;
using System.Globalization;
using DpoSharp.Data;
using DpoSharp.Tokenization;
using Spectre.Console;

namespace DpoSharp.Cli.Commands;

/// <summary>Settings of <c>dposharp data</c>.</summary>
public sealed class DataCommandSettings
{
    /// <summary>Dataset file or folder.</summary>
    public required string Dataset { get; init; }

    /// <summary>Model folder whose tokenizer (and chat template) to use; null: no tokenization.</summary>
    public string? Model { get; init; }

    /// <summary>Column names and split.</summary>
    public DatasetOptions DatasetOptions { get; init; } = new();

    /// <summary>Length limits.</summary>
    public TokenizationOptions TokenizationOptions { get; init; } = new();

    /// <summary>How many pairs to show.</summary>
    public int Show { get; init; }

    /// <summary>Where to write the normalized JSONL, or null.</summary>
    public string? Output { get; init; }
}

/// <summary>
/// <c>dposharp data</c>: validates a preference dataset, prints statistics, shows pairs exactly as the model will see
/// them, and writes the normalized pairs as JSONL.
/// </summary>
public static class DataCommand
{
    /// <summary>Marks where the completion starts in shown pairs.</summary>
    public const string Boundary = "⟪|⟫";

    public static Command Create()
    {
        var common = new DatasetCliOptions("Dataset file (.jsonl, .json, .parquet, .csv, .tsv) or Hugging Face dataset folder.");
        var model = new Option<string?>("--model") { Description = "Model folder: its tokenizer and chat template tokenize the pairs (token statistics, truncation, what the model sees)." };
        var show = new Option<int>("--show") { Description = "Show this many pairs as the model sees them.", DefaultValueFactory = _ => 0 };
        var output = new Option<string?>("--output") { Description = "Write the normalized pairs to this .jsonl file." };

        var cmd = new Command("data", "Validate a preference dataset, print statistics, show pairs as the model sees them, write normalized JSONL.");
        foreach (var o in common.DatasetFlags.Take(1).Append(model).Concat(common.DatasetFlags.Skip(1)).Concat(common.TokenizationFlags).Append(show).Append(output))
        {
            cmd.Options.Add(o);
        }

        cmd.SetAction(parse =>
        {
            var settings = new DataCommandSettings
            {
                Dataset = parse.GetValue(common.Dataset)!,
                Model = parse.GetValue(model),
                DatasetOptions = common.GetDatasetOptions(parse),
                TokenizationOptions = common.GetTokenizationOptions(parse, new TokenizationOptions()),
                Show = parse.GetValue(show),
                Output = parse.GetValue(output),
            };
            if (settings.Output is not null)
            {
                DpoSharpCli.CheckOutputFile("--output", settings.Output, settings.Dataset);
            }

            var tokenizer = settings.Model is null ? null : LoadTokenizer(settings.Model);
            return Execute(settings, tokenizer, DpoSharpCli.CreateConsole(parse.InvocationConfiguration.Output));
        });
        return cmd;
    }

    /// <summary>The tokenizer of a model folder (<c>tokenizer.json</c> etc., see <see cref="HfTokenizer"/>).</summary>
    public static ITokenizer LoadTokenizer(string modelDir) => HfTokenizer.Load(modelDir);

    /// <summary>Runs the command with an already loaded tokenizer (or none); returns the exit code.</summary>
    public static int Execute(DataCommandSettings s, ITokenizer? tokenizer, IAnsiConsole console)
    {
        if (s.Show < 0)
        {
            throw new DpoSharpException($"--show must be 0 or more, got {s.Show}.");
        }

        s.DatasetOptions.Validate();
        s.TokenizationOptions.Validate();
        var ds = PreferenceDatasetLoader.Load(s.Dataset, s.DatasetOptions);
        WriteSummary(console, ds);
        TokenizationResult? tokenized = null;
        if (tokenizer is null)
        {
            WriteCharLengths(console, ds);
        }
        else
        {
            tokenized = new PairTokenizer(tokenizer, s.TokenizationOptions).Tokenize(ds);
            WriteTokenStats(console, tokenized.Stats, s.TokenizationOptions);
        }

        foreach (var w in ds.Warnings.Concat(tokenized?.Warnings ?? []))
        {
            console.MarkupLine("[yellow]warning:[/] " + Markup.Escape(w));
        }

        if (s.Show > 0)
        {
            if (tokenized is null)
            {
                ShowNormalized(console, ds, s.Show, s.TokenizationOptions.SystemSeparator);
            }
            else
            {
                ShowTokenized(console, ds, tokenized, tokenizer!, s.Show);
            }
        }

        if (tokenized is not null && tokenized.Pairs.Count == 0)
        {
            throw new DpoSharpException(
                $"{s.Dataset}: no pair survives tokenization ({string.Join(", ", tokenized.Stats.Dropped.Select(d => $"{d.Key}: {d.Value}"))}); raise --max-length or lower --max-prompt-length.");
        }

        if (s.Output is not null)
        {
            NormalizedJsonlWriter.Write(ds.Examples, s.Output);
            console.MarkupLine($"wrote {ds.Examples.Count} normalized pair(s) to [green]{Markup.Escape(s.Output)}[/]");
        }

        return 0;
    }

    private static string N(int v) => v.ToString(CultureInfo.InvariantCulture);

    private static void WriteSummary(IAnsiConsole console, PreferenceDataset ds)
    {
        var table = new Table().AddColumn("dataset").AddColumn("value");
        table.AddRow("files", Markup.Escape(string.Join("\n", ds.Files)));
        if (ds.Split is not null)
        {
            table.AddRow("split", Markup.Escape($"{ds.Split} (available: {string.Join(", ", ds.AvailableSplits)})"));
        }

        table.AddRow("columns", Markup.Escape(string.Join(", ", ds.Columns)));
        table.AddRow("format", ds.Format switch
        {
            PreferenceFormat.Standard => "standard (text)",
            PreferenceFormat.Conversational => "conversational (messages; rendered with the chat template)",
            _ => "pre-tokenized (ids used as given)",
        });
        table.AddRow("pairs", N(ds.Examples.Count));
        table.AddRow("prompt extracted from chosen/rejected", N(ds.PromptExtractedCount));
        table.AddRow("identical chosen and rejected", N(ds.IdenticalCount));
        console.Write(table);
    }

    private static void WriteCharLengths(IAnsiConsole console, PreferenceDataset ds)
    {
        static int Chars(PreferenceExample e, int part) => e.Format switch
        {
            PreferenceFormat.Standard => part switch
            {
                0 => (e.System?.Length ?? 0) + e.Prompt!.Length,
                1 => e.Chosen!.Length,
                _ => e.Rejected!.Length,
            },
            PreferenceFormat.Conversational => (part switch { 0 => e.PromptMessages!, 1 => e.ChosenMessages!, _ => e.RejectedMessages! }).Sum(m => m.Content.Length),
            _ => (part switch { 0 => e.PromptIds!, 1 => e.ChosenIds!, _ => e.RejectedIds! }).Count,
        };
        var unit = ds.Format == PreferenceFormat.PreTokenized ? "tokens" : "characters";
        var table = LengthTable($"length ({unit})");
        AddLengths(table, "prompt", LengthSummary.From(ds.Examples.Select(e => Chars(e, 0))));
        AddLengths(table, "chosen", LengthSummary.From(ds.Examples.Select(e => Chars(e, 1))));
        AddLengths(table, "rejected", LengthSummary.From(ds.Examples.Select(e => Chars(e, 2))));
        console.Write(table);
        console.MarkupLine("[grey]Pass --model DIR for token counts, truncation and the text the model sees.[/]");
    }

    private static Table LengthTable(string title) =>
        new Table().AddColumn(title).AddColumn("p50", c => c.RightAligned()).AddColumn("p90", c => c.RightAligned())
            .AddColumn("p99", c => c.RightAligned()).AddColumn("max", c => c.RightAligned()).AddColumn("mean", c => c.RightAligned());

    private static void AddLengths(Table table, string name, LengthSummary l) =>
        table.AddRow(name, N(l.P50), N(l.P90), N(l.P99), N(l.Max), l.Mean.ToString("0.0", CultureInfo.InvariantCulture));

    private static void WriteTokenStats(IAnsiConsole console, TokenizationStats st, TokenizationOptions o)
    {
        static string Lim(int? v) => v is int x ? N(x) : "none";
        var table = new Table().AddColumn("tokenization").AddColumn("value");
        table.AddRow("limits", Markup.Escape($"max_length {Lim(o.MaxLength)}, max_prompt_length {Lim(o.MaxPromptLength)}, max_completion_length {Lim(o.MaxCompletionLength)}, {(o.TruncationMode == TruncationMode.KeepEnd ? "keep_end" : "keep_start")}"));
        table.AddRow("pairs kept", $"{N(st.Kept)} of {N(st.Rows)}");
        table.AddRow("pairs dropped", st.DroppedCount == 0 ? "0" : Markup.Escape($"{st.DroppedCount} ({string.Join(", ", st.Dropped.Select(d => $"{d.Key}: {d.Value}"))})"));
        table.AddRow("prompts truncated", N(st.PromptTruncated));
        table.AddRow("chosen truncated", N(st.ChosenTruncated));
        table.AddRow("rejected truncated", N(st.RejectedTruncated));
        table.AddRow("prompt not a token prefix of prompt+completion", N(st.NonPrefix));
        if (st.TemplateMismatch > 0)
        {
            table.AddRow("chat template prefix mismatches", N(st.TemplateMismatch));
        }

        table.AddRow("identical chosen and rejected", N(st.IdenticalPairs));
        console.Write(table);
        var lengths = LengthTable("length (tokens)");
        AddLengths(lengths, "prompt", st.Prompt);
        AddLengths(lengths, "chosen", st.Chosen);
        AddLengths(lengths, "rejected", st.Rejected);
        AddLengths(lengths, "prompt before truncation", st.RawPrompt);
        AddLengths(lengths, "chosen before truncation", st.RawChosen);
        AddLengths(lengths, "rejected before truncation", st.RawRejected);
        console.Write(lengths);
    }

    /// <summary>Writes text as is: no markup, no wrapping at the console width (shown pairs must be exact).</summary>
    private static void Raw(IAnsiConsole console, string text)
    {
        var writer = console.Profile.Out.Writer;
        writer.WriteLine(text);
        writer.Flush();
    }

    /// <summary>Makes line breaks and tabs visible (↵ then the break, →).</summary>
    public static string Visible(string text) => text.Replace("\r", "␍").Replace("\n", "↵\n").Replace("\t", "→");

    private static void ShowNormalized(IAnsiConsole console, PreferenceDataset ds, int count, string systemSeparator)
    {
        foreach (var e in ds.Examples.Take(count))
        {
            console.Write(new Rule(Markup.Escape($"pair {e.SourceRow} · {Path.GetFileName(e.SourceFile)}")).LeftJustified());
            switch (e.Format)
            {
                case PreferenceFormat.Standard:
                    var prompt = e.System is null ? e.Prompt! : e.System + systemSeparator + e.Prompt;
                    Raw(console, "chosen:   " + Visible(prompt + Boundary + e.Chosen));
                    Raw(console, "rejected: " + Visible(prompt + Boundary + e.Rejected));
                    break;
                case PreferenceFormat.Conversational:
                    static string M(IEnumerable<ChatMessage> ms) => string.Concat(ms.Select(m => $"\n  [{m.Role}] {Visible(m.Content)}"));
                    Raw(console, "prompt:" + M(e.PromptMessages!));
                    Raw(console, "chosen:" + M(e.ChosenMessages!));
                    Raw(console, "rejected:" + M(e.RejectedMessages!));
                    break;
                default:
                    Raw(console, $"prompt ids:   [{string.Join(", ", e.PromptIds!)}]");
                    Raw(console, $"chosen ids:   [{string.Join(", ", e.ChosenIds!)}]");
                    Raw(console, $"rejected ids: [{string.Join(", ", e.RejectedIds!)}]");
                    break;
            }
        }
    }

    private static void ShowTokenized(IAnsiConsole console, PreferenceDataset ds, TokenizationResult result, ITokenizer tokenizer, int count)
    {
        console.MarkupLine(Markup.Escape($"Pairs as the model sees them (decoded with special tokens; {Boundary} marks where the completion starts; ↵ is a line break):"));
        foreach (var pair in result.Pairs.Take(count))
        {
            var e = ds.Examples[pair.SourceIndex];
            console.Write(new Rule(Markup.Escape($"pair {pair.SourceIndex} · {Path.GetFileName(e.SourceFile)} row {e.SourceRow} · prompt {pair.PromptIds.Length} + chosen {pair.ChosenIds.Length} / rejected {pair.RejectedIds.Length} tokens")).LeftJustified());
            Raw(console, "chosen:   " + Render(tokenizer, pair.PromptIds, pair.ChosenIds));
            Raw(console, "rejected: " + Render(tokenizer, pair.PromptIds, pair.RejectedIds));
        }
    }

    /// <summary>The text of a shown pair: prompt, boundary marker, completion (special tokens visible).</summary>
    public static string Render(ITokenizer tokenizer, int[] promptIds, int[] completionIds)
    {
        return Visible(tokenizer.Decode(promptIds) + Boundary + tokenizer.Decode(completionIds));
    }
}
