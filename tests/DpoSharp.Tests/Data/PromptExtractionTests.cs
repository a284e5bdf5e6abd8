using DpoSharp.Data;
using DpoSharp.Tokenization;

namespace DpoSharp.Tests.Data;

public class PromptExtractionTests
{
    [Theory]
    // Anthropic HH: the prompt ends with the last shared "\n\nAssistant:", even when the answers share words.
    [InlineData("\n\nHuman: What is 2+2?\n\nAssistant: It is 4.", "\n\nHuman: What is 2+2?\n\nAssistant: It is 5.",
        "\n\nHuman: What is 2+2?\n\nAssistant:", " It is 4.", " It is 5.")]
    [InlineData("\n\nHuman: Hi\n\nAssistant: Hello!\n\nHuman: How are you?\n\nAssistant: Fine, thanks.",
        "\n\nHuman: Hi\n\nAssistant: Hello!\n\nHuman: How are you?\n\nAssistant: Bad.",
        "\n\nHuman: Hi\n\nAssistant: Hello!\n\nHuman: How are you?\n\nAssistant:", " Fine, thanks.", " Bad.")]
    [InlineData("\n\nHuman: Q\n\nAssistant:A", "\n\nHuman: Q\n\nAssistant:B", "\n\nHuman: Q\n\nAssistant:", "A", "B")]
    // Divergent follow-up human turns: still cut after the last *shared* assistant marker.
    [InlineData("\n\nHuman: Q\n\nAssistant: A\n\nHuman: more", "\n\nHuman: Q\n\nAssistant: A\n\nHuman: less",
        "\n\nHuman: Q\n\nAssistant:", " A\n\nHuman: more", " A\n\nHuman: less")]
    // Not HH: the longest common prefix, with TRL's rule that a trailing space goes to the completions.
    [InlineData("The answer is yes", "The answer is no", "The answer is", " yes", " no")]
    [InlineData("Answer: yes", "Answer:no", "Answer:", " yes", "no")]
    [InlineData("abc", "xyz", "", "abc", "xyz")]
    public void StringPrompts(string chosen, string rejected, string prompt, string chosenRest, string rejectedRest)
    {
        var (p, c, r) = PromptExtraction.Split(chosen, rejected);
        Assert.Equal(prompt, p);
        Assert.Equal(chosenRest, c);
        Assert.Equal(rejectedRest, r);
    }

    [Fact]
    public void MessagePromptsAreTheSharedLeadingMessages()
    {
        ChatMessage U(string s) => new("user", s);
        ChatMessage A(string s) => new("assistant", s);
        var (p, c, r) = PromptExtraction.Split([U("hi"), A("hello"), U("joke?"), A("knock knock")], [U("hi"), A("hello"), U("joke?"), A("no")]);
        Assert.Equal([U("hi"), A("hello"), U("joke?")], p);
        Assert.Equal([A("knock knock")], c);
        Assert.Equal([A("no")], r);

        // Same content, different role: not shared.
        var (p2, _, _) = PromptExtraction.Split([U("x"), A("y")], [new ChatMessage("system", "x"), A("y")]);
        Assert.Empty(p2);
    }

    [Fact]
    public void HhFileThroughTheLoader()
    {
        using var dir = TestPaths.CreateTempDir();
        var path = Path.Combine(dir.Path, "hh.jsonl");
        File.WriteAllText(path,
            "{\"chosen\": \"\\n\\nHuman: Can you help me?\\n\\nAssistant: Sure, what with?\", \"rejected\": \"\\n\\nHuman: Can you help me?\\n\\nAssistant: Sure, no.\"}\n");
        var e = Assert.Single(PreferenceDatasetLoader.Load(path).Examples);
        Assert.Equal("\n\nHuman: Can you help me?\n\nAssistant:", e.Prompt);
        Assert.Equal(" Sure, what with?", e.Chosen);
        Assert.Equal(" Sure, no.", e.Rejected);
        Assert.True(e.PromptExtracted);
    }
}
