using System.Text.Json.Nodes;
using DpoSharp.Data;
using DpoSharp.Tokenization;

namespace DpoSharp.Tests.Data;

/// <summary>Issue 10, item 3: SFT data is read as <c>train</c> reads data (every file kind, dataset folders with
/// splits) and bad rows are named the same way (<c>file row N (line L)</c>, rows from 0).</summary>
public class SftDatasetTests
{
    private static List<JsonObject> Rows(int n, string prefix = "q") =>
        [.. Enumerable.Range(0, n).Select(i => new JsonObject { ["prompt"] = $"{prefix}{i}?", ["completion"] = $" a{i}" })];

    [Theory]
    [MemberData(nameof(Kinds))]
    public void EveryFileKindLoads(string kind)
    {
        using var dir = TestPaths.CreateTempDir();
        var path = DataFiles.Write(dir.Path, "sft", kind, Rows(3));
        var rows = SftDataset.Load(path);
        Assert.Equal([new PromptCompletion("q0?", " a0"), new PromptCompletion("q1?", " a1"), new PromptCompletion("q2?", " a2")], rows);
    }

    public static TheoryData<string> Kinds() => [.. DataFiles.Kinds];

    [Fact]
    public void ADatasetFolderLoadsItsSplits()
    {
        using var dir = TestPaths.CreateTempDir();
        var data = Directory.CreateDirectory(Path.Combine(dir.Path, "data")).FullName;
        DataFiles.WriteParquet(Path.Combine(data, "train-00000-of-00001.parquet"), Rows(4));
        DataFiles.WriteParquet(Path.Combine(data, "test-00000-of-00001.parquet"), Rows(2, "t"));
        File.WriteAllText(Path.Combine(dir.Path, "README.md"), "# a dataset card\n");
        Assert.Equal(4, SftDataset.Load(dir.Path).Count);
        Assert.Equal(["t0?", "t1?"], SftDataset.Load(dir.Path, "test").Select(r => r.Prompt));
        Assert.Contains("no split 'validation'", Assert.Throws<DpoSharpException>(() => SftDataset.Load(dir.Path, "validation")).Message);
    }

    [Fact]
    public void TextRowsAreLanguageModelingRows()
    {
        using var dir = TestPaths.CreateTempDir();
        var path = Path.Combine(dir.Path, "lm.jsonl");
        File.WriteAllLines(path, ["""{"text": "one two"}""", """{"text": "three"}"""]);
        var rows = SftDataset.Load(path);
        Assert.All(rows, r => Assert.True(r.IsText));
        Assert.Equal(["one two", "three"], rows.Select(r => r.Completion));

        File.WriteAllLines(path, ["""{"content": "one two"}"""]);
        Assert.True(SftDataset.Load(path, textField: "content").Single().IsText);
    }

    [Fact]
    public void BadRowsAreNamedAsTrainNamesThem()
    {
        using var dir = TestPaths.CreateTempDir();
        var path = Path.Combine(dir.Path, "bad.jsonl");
        File.WriteAllLines(path, ["""{"prompt": "a", "completion": " b"}""", "", """{"prompt": "a", "answer": " b"}"""]);
        var ex = Assert.Throws<DpoSharpException>(() => SftDataset.Load(path)).Message;
        Assert.Contains($"{path} row 1 (line 3): missing column 'completion'. Columns present: prompt, answer.", ex);

        File.WriteAllLines(path, ["""{"prompt": "a", "completion": " b"}""", """{"prompt": "a", "completion": 3}"""]);
        Assert.Contains("row 1 (line 2): column 'completion' must be a string, found a number", Assert.Throws<DpoSharpException>(() => SftDataset.Load(path)).Message);

        File.WriteAllLines(path, ["""{"prompt": "a", "completion": " b"}""", """{"text": "c"}"""]);
        var mixed = Assert.Throws<DpoSharpException>(() => SftDataset.Load(path)).Message;
        Assert.Contains("row 1 (line 2): this row is language-modeling text ('text') but", mixed);
        Assert.Contains("row 0 (line 1) is prompt-completion", mixed);

        var csv = DataFiles.Write(dir.Path, "bad", "csv", [new JsonObject { ["prompt"] = "a", ["reply"] = "b" }]);
        Assert.Contains("row 0 (line 2): missing column 'completion'", Assert.Throws<DpoSharpException>(() => SftDataset.Load(csv)).Message);
    }

    [Fact]
    public void WithoutCompletionOnlyLossAndForTextTheLossCoversEveryTokenButTheFirst()
    {
        var tok = new CharTokenizer();
        var pc = new PromptCompletion("xy", "zw");
        var completionOnly = SftDataset.Tokenize([pc], tok).Single();
        Assert.Equal((2, 3), (completionOnly.PromptIds.Length, completionOnly.CompletionIds.Length));   // z, w, EOS
        var all = SftDataset.Tokenize([pc], tok, completionOnlyLoss: false).Single();
        Assert.Equal(completionOnly.PromptIds.Concat(completionOnly.CompletionIds), all.PromptIds.Concat(all.CompletionIds));
        Assert.Single(all.PromptIds);
        var text = SftDataset.Tokenize([PromptCompletion.Text("xyzw")], tok).Single();
        Assert.Equal(all.PromptIds.Concat(all.CompletionIds), text.PromptIds.Concat(text.CompletionIds));
        Assert.Single(text.PromptIds);
    }
}
