using DpoSharp.Data;

namespace DpoSharp.Tests.Data;

/// <summary>KTO data: prompt/completion/label rows, messages + label, and preference pairs unpaired as TRL's
/// <c>unpair_preference_dataset</c>.</summary>
public class UnpairedDatasetTests
{
    [Fact]
    public void PreferencePairsUnpairIntoEveryChosenAsTrueThenEveryRejectedAsFalse()
    {
        using var dir = TestPaths.CreateTempDir();
        var path = Path.Combine(dir.Path, "pairs.jsonl");
        File.WriteAllLines(path,
        [
            """{"prompt": "p0", "chosen": "c0", "rejected": "r0"}""",
            """{"prompt": "p1", "chosen": "c1", "rejected": "r1"}""",
        ]);
        var ds = UnpairedDatasetLoader.Load(path);
        Assert.True(ds.FromPairs);
        Assert.Equal([("p0", "c0", true), ("p1", "c1", true), ("p0", "r0", false), ("p1", "r1", false)],
            ds.Examples.Select(e => (e.Example.Prompt!, e.Example.Chosen!, e.Label)));
        Assert.All(ds.Examples, e => Assert.Equal(e.Example.Chosen, e.Example.Rejected));
    }

    [Fact]
    public void UnpairedRowsKeepTheirLabelsInEveryShape()
    {
        using var dir = TestPaths.CreateTempDir();
        var standard = Path.Combine(dir.Path, "kto.jsonl");
        File.WriteAllLines(standard,
        [
            """{"prompt": "2+2=", "completion": "4", "label": true}""",
            """{"prompt": "2+2=", "completion": "5", "label": false}""",
        ]);
        var ds = UnpairedDatasetLoader.Load(standard);
        Assert.False(ds.FromPairs);
        Assert.Equal([("2+2=", "4", true), ("2+2=", "5", false)], ds.Examples.Select(e => (e.Example.Prompt!, e.Example.Chosen!, e.Label)));

        var csv = Path.Combine(dir.Path, "kto.csv");
        File.WriteAllLines(csv, ["prompt,completion,label", "a,b,True", "c,d,0"]);
        Assert.Equal([true, false], UnpairedDatasetLoader.Load(csv).Examples.Select(e => e.Label));

        var conversational = Path.Combine(dir.Path, "conv.jsonl");
        File.WriteAllLines(conversational,
        [
            """{"prompt": [{"role": "user", "content": "hi"}], "completion": [{"role": "assistant", "content": "hello"}], "label": false}""",
            """{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a1"}, {"role": "user", "content": "more"}, {"role": "assistant", "content": "a2"}], "label": true}""",
        ]);
        var conv = UnpairedDatasetLoader.Load(conversational).Examples;
        Assert.Equal("hello", conv[0].Example.ChosenMessages!.Single().Content);
        Assert.False(conv[0].Label);
        Assert.Equal(["q", "a1", "more"], conv[1].Example.PromptMessages!.Select(m => m.Content));
        Assert.Equal("a2", conv[1].Example.ChosenMessages!.Single().Content);
        Assert.True(conv[1].Label);
    }

    [Fact]
    public void BadLabelsAndMixedRowsNameTheRow()
    {
        using var dir = TestPaths.CreateTempDir();
        var bad = Path.Combine(dir.Path, "bad.jsonl");
        File.WriteAllLines(bad, ["""{"prompt": "a", "completion": "b", "label": "maybe"}"""]);
        var ex = Assert.Throws<DpoSharpException>(() => UnpairedDatasetLoader.Load(bad));
        Assert.Contains("bad.jsonl row 0", ex.Message);
        Assert.Contains("label", ex.Message);

        var mixed = Path.Combine(dir.Path, "mixed.jsonl");
        File.WriteAllLines(mixed, ["""{"prompt": "a", "completion": "b", "label": true}""", """{"prompt": "a", "chosen": "b", "rejected": "c"}"""]);
        Assert.Contains("row 1", Assert.Throws<DpoSharpException>(() => UnpairedDatasetLoader.Load(mixed)).Message);

        var noAssistant = Path.Combine(dir.Path, "msgs.jsonl");
        File.WriteAllLines(noAssistant, ["""{"messages": [{"role": "user", "content": "q"}], "label": true}"""]);
        Assert.Contains("assistant", Assert.Throws<DpoSharpException>(() => UnpairedDatasetLoader.Load(noAssistant)).Message);
    }
}
