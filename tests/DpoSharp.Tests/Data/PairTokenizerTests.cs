using DpoSharp.Data;
using DpoSharp.Tokenization;
using static DpoSharp.Tests.TestSupport.CharTokenizer;

namespace DpoSharp.Tests.Data;

/// <summary>Pair tokenization against ids written by hand with <see cref="CharTokenizer"/>'s rules
/// (&lt;s&gt;=1, &lt;/s&gt;=2, &lt;|im_start|&gt;=3, &lt;|im_end|&gt;=4, "ab"=5, other char c = 10 + c).</summary>
public class PairTokenizerTests
{
    private static readonly TokenizationOptions NoLimits = new() { MaxLength = null, MaxPromptLength = null };

    private static PreferenceExample Text(string prompt, string chosen, string rejected, string? system = null) => new()
    {
        Format = PreferenceFormat.Standard,
        System = system,
        Prompt = prompt,
        Chosen = chosen,
        Rejected = rejected,
    };

    private static PreferenceExample Chat(ChatMessage[] prompt, ChatMessage[] chosen, ChatMessage[] rejected) => new()
    {
        Format = PreferenceFormat.Conversational,
        PromptMessages = prompt,
        ChosenMessages = chosen,
        RejectedMessages = rejected,
    };

    private static TokenizationResult Run(ITokenizer tok, TokenizationOptions options, params PreferenceExample[] examples) =>
        new PairTokenizer(tok, options).Tokenize(examples);

    [Fact]
    public void StandardTextGetsEosOnCompletionsAndNoBosForGpt2Style()
    {
        var r = Run(new CharTokenizer(), NoLimits, Text("Q:", " yes", " no"));
        var p = Assert.Single(r.Pairs);
        Assert.Equal(new[] { 10 + 'Q', 10 + ':' }, p.PromptIds);
        Assert.Equal(new[] { 10 + ' ', 10 + 'y', 10 + 'e', 10 + 's', 2 }, p.ChosenIds);
        Assert.Equal(new[] { 10 + ' ', 10 + 'n', 10 + 'o', 2 }, p.RejectedIds);
        Assert.Equal(0, r.Stats.NonPrefix);
        Assert.Empty(r.Warnings);
    }

    [Fact]
    public void BosIsAddedOnceAndEosNeverDuplicated()
    {
        var tok = new CharTokenizer { AddsBosToken = true };
        var r = Run(tok, NoLimits, Text("Q:", " yes</s>", " no"), Text("<s>Q:", " yes", " no"));
        Assert.Equal([1, .. Chars("Q:")], r.Pairs[0].PromptIds);
        Assert.Equal([.. Chars(" yes"), 2], r.Pairs[0].ChosenIds); // the text already ended with EOS
        Assert.Equal([1, .. Chars("Q:")], r.Pairs[1].PromptIds); // the text already started with BOS
    }

    [Fact]
    public void SystemTextPrecedesThePrompt()
    {
        var r = Run(new CharTokenizer(), NoLimits, Text("P", "c", "r", system: "S"));
        Assert.Equal(Chars("S\n\nP"), r.Pairs[0].PromptIds);
    }

    [Fact]
    public void NonPrefixPromptsAreCountedAndWarnedOnce()
    {
        // "xa" + "b!" tokenizes as x, ab, ! — the prompt's last token merges with the completion.
        var r = Run(new CharTokenizer(), NoLimits, Text("xa", "b!", "c"), Text("q", "w", "e"), Text("za", "bb", "bc"));
        Assert.Equal(2, r.Stats.NonPrefix);
        var w = Assert.Single(r.Warnings);
        Assert.StartsWith("2 of 3 pair(s)", w);
        Assert.Equal(Chars("xa"), r.Pairs[0].PromptIds); // prompt and completion still tokenized separately
        Assert.Equal([.. Chars("b!"), 2], r.Pairs[0].ChosenIds);
    }

    [Fact]
    public void ConversationalUsesTheTemplateAndNoExtraEos()
    {
        var r = Run(new CharTokenizer(), NoLimits,
            Chat([new("user", "hi")], [new("assistant", "yo")], [new("assistant", "no")]));
        var p = Assert.Single(r.Pairs);
        int[] prompt = [3, .. Chars("user\nhi"), 4, .. Chars("\n"), 3, .. Chars("assistant\n")];
        Assert.Equal(prompt, p.PromptIds);
        Assert.Equal([.. Chars("yo"), 4, .. Chars("\n")], p.ChosenIds);
        Assert.Equal([.. Chars("no"), 4, .. Chars("\n")], p.RejectedIds);
        Assert.Equal(0, r.Stats.TemplateMismatch);
    }

    [Fact]
    public void TemplatePrefixMismatchIsCountedAndTheCompletionStartsWhereRenderingsDiffer()
    {
        // The generation prompt "assistant:\n" is not how the template renders an assistant turn ("assistant\n").
        var tok = new CharTokenizer { GenerationPrompt = "<|im_start|>assistant:\n" };
        var r = Run(tok, NoLimits, Chat([new("user", "hi")], [new("assistant", "yo")], [new("assistant", "no")]));
        Assert.Equal(1, r.Stats.TemplateMismatch);
        Assert.Equal([.. Chars("\nyo"), 4, .. Chars("\n")], r.Pairs[0].ChosenIds);
        Assert.Contains(r.Warnings, w => w.StartsWith("1 pair(s): the chat template's rendering", StringComparison.Ordinal));
    }

    [Fact]
    public void TemplateBosIsNotDuplicated()
    {
        var tok = new CharTokenizer { AddsBosToken = true, TemplateStartsWithBos = true };
        var r = Run(tok, NoLimits, Chat([new("user", "hi")], [new("assistant", "yo")], [new("assistant", "no")]));
        var p = r.Pairs[0].PromptIds;
        Assert.Equal(1, p[0]);
        Assert.Equal(3, p[1]);
        Assert.Equal(1, p.Count(id => id == 1));
    }

    [Fact]
    public void PromptTruncationKeepEndAndKeepStart()
    {
        var ex = Text("0123456789", "x", "y");
        var end = Run(new CharTokenizer(), new TokenizationOptions { MaxLength = null, MaxPromptLength = 4, TruncationMode = TruncationMode.KeepEnd }, ex);
        Assert.Equal(Chars("6789"), end.Pairs[0].PromptIds);
        Assert.Equal(1, end.Stats.PromptTruncated);
        var start = Run(new CharTokenizer(), new TokenizationOptions { MaxLength = null, MaxPromptLength = 4, TruncationMode = TruncationMode.KeepStart }, ex);
        Assert.Equal(Chars("0123"), start.Pairs[0].PromptIds);
        Assert.Equal(10, start.Stats.RawPrompt.Max);
        Assert.Equal(4, start.Stats.Prompt.Max);
    }

    [Fact]
    public void MaxLengthCutsCompletionsAfterThePrompt()
    {
        // prompt 5 tokens, chosen "xyz"+EOS = 4, rejected "w"+EOS = 2; max_length 7 leaves 2 completion tokens.
        var r = Run(new CharTokenizer(), new TokenizationOptions { MaxLength = 7, MaxPromptLength = null }, Text("01234", "xyz", "w"));
        var p = r.Pairs[0];
        Assert.Equal(Chars("01234"), p.PromptIds);
        Assert.Equal(Chars("xy"), p.ChosenIds);
        Assert.Equal([.. Chars("w"), 2], p.RejectedIds);
        Assert.Equal(1, r.Stats.ChosenTruncated);
        Assert.Equal(0, r.Stats.RejectedTruncated);
    }

    [Fact]
    public void MaxCompletionLengthKeepsTheStart()
    {
        var r = Run(new CharTokenizer(), new TokenizationOptions { MaxLength = null, MaxPromptLength = null, MaxCompletionLength = 2 }, Text("p", "xyz", "vw"));
        Assert.Equal(Chars("xy"), r.Pairs[0].ChosenIds);
        Assert.Equal(Chars("vw"), r.Pairs[0].RejectedIds); // "vw"+EOS cut to 2: the EOS goes
        Assert.Equal(2, r.Stats.ChosenTruncated + r.Stats.RejectedTruncated);
    }

    [Fact]
    public void PromptKeepEndThenMaxLength()
    {
        // keep_end cuts the prompt to 6, then max_length 8 leaves 2 completion tokens.
        var r = Run(new CharTokenizer(), new TokenizationOptions { MaxLength = 8, MaxPromptLength = 6, TruncationMode = TruncationMode.KeepEnd }, Text("0123456789", "xyz", "w"));
        Assert.Equal(Chars("456789"), r.Pairs[0].PromptIds);
        Assert.Equal(Chars("xy"), r.Pairs[0].ChosenIds);
        Assert.Equal([.. Chars("w"), 2], r.Pairs[0].RejectedIds);
    }

    [Fact]
    public void RowsWithoutRoomForACompletionAreDroppedAndCounted()
    {
        var r = Run(new CharTokenizer(), new TokenizationOptions { MaxLength = 10, MaxPromptLength = null },
            Text("0123456789", "x", "y"), // prompt fills max_length
            Text("p", "ok", "fine"),
            Text("0123456789AB", "x", "y"));
        Assert.Single(r.Pairs);
        Assert.Equal(1, r.Pairs[0].SourceIndex);
        Assert.Equal(2, r.Stats.Dropped[PairTokenizer.PromptTooLong]);
        Assert.Equal(2, r.Stats.DroppedCount);
        Assert.Contains(r.Warnings, w => w.StartsWith("2 pair(s) dropped", StringComparison.Ordinal));
        Assert.All(r.Pairs, p => Assert.True(p.ChosenIds.Length > 0 && p.RejectedIds.Length > 0));
    }

    [Fact]
    public void EmptyCompletionIsDroppedNeverKept()
    {
        var tok = new CharTokenizer { HasEos = false };
        var r = Run(tok, NoLimits, Text("p", "", "r"), Text("p", "c", ""), Text("p", "c", "r"));
        Assert.Single(r.Pairs);
        Assert.Equal(1, r.Stats.Dropped[PairTokenizer.EmptyChosen]);
        Assert.Equal(1, r.Stats.Dropped[PairTokenizer.EmptyRejected]);
    }

    [Fact]
    public void PreTokenizedRowsAreUsedAsGiven()
    {
        var ex = new PreferenceExample { Format = PreferenceFormat.PreTokenized, PromptIds = [7, 8, 9], ChosenIds = [11], RejectedIds = [12, 13] };
        var r = Run(new CharTokenizer { AddsBosToken = true }, NoLimits, ex);
        Assert.Equal(new[] { 7, 8, 9 }, r.Pairs[0].PromptIds); // no BOS added
        Assert.Equal(new[] { 11 }, r.Pairs[0].ChosenIds); // no EOS added
        Assert.Equal(new[] { 12, 13 }, r.Pairs[0].RejectedIds);
        var cut = Run(new CharTokenizer(), new TokenizationOptions { MaxLength = 4, MaxPromptLength = null }, ex);
        Assert.Equal(new[] { 12 }, cut.Pairs[0].RejectedIds);
    }

    [Fact]
    public void LengthPercentilesAreNearestRank()
    {
        var l = LengthSummary.From([10, 1, 9, 2, 8, 3, 7, 4, 6, 5]);
        Assert.Equal((1, 5, 9, 10, 10), (l.Min, l.P50, l.P90, l.P99, l.Max));
        Assert.Equal(5.5, l.Mean);
        var r = Run(new CharTokenizer(), NoLimits, Text("a", "x", "y"), Text("aa", "x", "y"), Text("aaa", "x", "y"));
        Assert.Equal((2, 3, 3), (r.Stats.Prompt.P50, r.Stats.Prompt.P90, r.Stats.Prompt.Max));
    }

    [Fact]
    public void InvalidLimitsAreRejected()
    {
        Assert.Throws<DpoSharpException>(() => new PairTokenizer(new CharTokenizer(), new TokenizationOptions { MaxLength = 100, MaxPromptLength = 100 }));
        Assert.Throws<DpoSharpException>(() => new PairTokenizer(new CharTokenizer(), new TokenizationOptions { MaxCompletionLength = 0 }));
        Assert.Throws<DpoSharpException>(() => TokenizationOptions.ParseTruncationMode("keep_both"));
        Assert.Equal(TruncationMode.KeepStart, TokenizationOptions.ParseTruncationMode("keep_start"));
    }
}
